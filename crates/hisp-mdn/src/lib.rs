//! Delivery notification for Direct: MDNs and DSNs (being built).
