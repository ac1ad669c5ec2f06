//! What the pages say in words: dates, sizes, folder names and the
//! Direct Status of a recipient.

use hisp_store::{Folder, RecipientRecord, TrackingState};
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// A time for people: `1 Jan 2024, 10:00 UTC`.
pub(crate) fn date(t: OffsetDateTime) -> String {
    let format =
        format_description!("[day padding:none] [month repr:short] [year], [hour]:[minute] UTC");
    t.to_offset(UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| crate::api::rfc3339(t))
}

/// A time to the second, for the steps of a Direct Status:
/// `1 Jan 2024, 10:00:05 UTC`.
pub(crate) fn date_seconds(t: OffsetDateTime) -> String {
    let format = format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute]:[second] UTC"
    );
    t.to_offset(UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| crate::api::rfc3339(t))
}

/// A time for machines, for `<time datetime>`.
pub(crate) fn machine(t: OffsetDateTime) -> String {
    crate::api::rfc3339(t)
}

/// A size for people: `840 bytes`, `12 KB`, `3.4 MB`, `25 MB`.
pub(crate) fn size(bytes: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    if bytes < KB {
        format!("{bytes} bytes")
    } else if bytes < MB {
        format!("{} KB", bytes.div_ceil(KB))
    } else {
        let tenths = bytes.saturating_mul(10).div_ceil(MB);
        match tenths % 10 {
            0 => format!("{} MB", tenths / 10),
            d => format!("{}.{d} MB", tenths / 10),
        }
    }
}

/// The name a folder has in the navigation.
pub(crate) fn folder_name(folder: Folder) -> &'static str {
    match folder {
        Folder::Inbox => "Inbox",
        Folder::Sent => "Sent Messages",
        Folder::Disregarded => "Disregarded",
    }
}

/// Where a recipient of a sent message is, in words: delivered once the
/// provider's HISP confirmed it (a `processed` MDN or more), waiting
/// before, or not delivered with the reason.
pub(crate) fn state(r: &RecipientRecord) -> String {
    match r.state {
        TrackingState::Queued | TrackingState::Relayed => "Waiting for confirmation".into(),
        TrackingState::Processed | TrackingState::Dispatched | TrackingState::Delivered => {
            "Delivered to the provider's system".into()
        }
        TrackingState::Failed => format!(
            "Could not be delivered: {}",
            r.reason.as_deref().unwrap_or("no reason was given")
        ),
    }
}

/// A short class name for the state's look: `waiting`, `delivered`, `failed`.
pub(crate) fn state_class(state: TrackingState) -> &'static str {
    match state {
        TrackingState::Queued | TrackingState::Relayed => "waiting",
        TrackingState::Processed | TrackingState::Dispatched | TrackingState::Delivered => {
            "delivered"
        }
        TrackingState::Failed => "failed",
    }
}

/// One step of the tracking, in words.
pub(crate) fn step(state: TrackingState) -> &'static str {
    match state {
        TrackingState::Queued => "Accepted for sending",
        TrackingState::Relayed => "Handed to the provider's HISP",
        TrackingState::Processed => "Received by the provider's HISP",
        TrackingState::Dispatched => "Made available to the provider",
        TrackingState::Delivered => "Delivery confirmed",
        TrackingState::Failed => "Failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sizes_read_as_words() {
        let t = OffsetDateTime::from_unix_timestamp(1_704_103_200).unwrap();
        assert_eq!(date(t), "1 Jan 2024, 10:00 UTC");
        assert_eq!(size(840), "840 bytes");
        assert_eq!(size(12 * 1024), "12 KB");
        assert_eq!(size(3 * 1024 * 1024 + 400 * 1024), "3.4 MB");
        assert_eq!(size(25 * 1024 * 1024), "25 MB");
        assert_eq!(
            date_seconds(t + time::Duration::seconds(5)),
            "1 Jan 2024, 10:00:05 UTC"
        );
    }
}
