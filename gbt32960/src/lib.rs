//! gbt32960 (in progress)
