//! jt808 (in progress)
