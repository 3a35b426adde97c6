//! The conformance suite, once per backend: `memory::NAME` and `sled::NAME` are the same
//! checks.

mod memory {
    dittofs_metadata::conformance_tests!(dittofs_metadata::conformance::Fixture::memory());
}

mod sled {
    dittofs_metadata::conformance_tests!(dittofs_metadata::conformance::Fixture::sled());
}
