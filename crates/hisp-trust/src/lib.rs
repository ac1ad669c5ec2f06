//! Trust anchors and bundles, RFC 5280 path validation, revocation and address binding.
