//! Testing tools for dojobber suites.
