//! Draws dojobber job graphs (work in progress).
