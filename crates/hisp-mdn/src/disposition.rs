//! The Disposition field of an MDN (RFC 8098 §3.2.6).

use std::fmt;

use crate::error::MdnError;
use crate::fields::{clip, strip_comments};

/// What happened to the message at the recipient (RFC 8098 §3.2.6.2; `failed` and
/// `denied` come from RFC 3798 and are what Direct implementations send for a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispositionType {
    /// Shown to the recipient.
    Displayed,
    /// Deleted without being shown.
    Deleted,
    /// Sent somewhere else (Direct: delivered to the final destination).
    Dispatched,
    /// Processed by the receiving system (Direct: accepted by the recipient's HISP).
    Processed,
    /// Could not be processed or delivered (Direct IG).
    Failed,
    /// The recipient refused to notify (RFC 3798).
    Denied,
    /// Any other type, as written (lower-cased).
    Other(String),
}

impl DispositionType {
    /// The keyword as written in the Disposition field.
    pub fn as_str(&self) -> &str {
        match self {
            DispositionType::Displayed => "displayed",
            DispositionType::Deleted => "deleted",
            DispositionType::Dispatched => "dispatched",
            DispositionType::Processed => "processed",
            DispositionType::Failed => "failed",
            DispositionType::Denied => "denied",
            DispositionType::Other(s) => s,
        }
    }

    /// Reads a keyword, case-insensitively.
    pub fn parse(keyword: &str) -> Self {
        let k = keyword.trim().to_ascii_lowercase();
        match k.as_str() {
            "displayed" => DispositionType::Displayed,
            "deleted" => DispositionType::Deleted,
            "dispatched" => DispositionType::Dispatched,
            "processed" => DispositionType::Processed,
            "failed" => DispositionType::Failed,
            "denied" => DispositionType::Denied,
            _ => DispositionType::Other(k),
        }
    }
}

impl fmt::Display for DispositionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole Disposition field: how the MDN came about and what it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// `automatic-action` or `manual-action` (RFC 8098 §3.2.6.1).
    pub action_mode: String,
    /// `MDN-sent-automatically` or `MDN-sent-manually` (RFC 8098 §3.2.6.1).
    pub sending_mode: String,
    /// The disposition type.
    pub kind: DispositionType,
    /// Modifiers such as `error` (RFC 8098 §3.2.6.3), kept verbatim.
    pub modifiers: Vec<String>,
}

impl Disposition {
    /// The disposition a HISP sends: `automatic-action/MDN-sent-automatically` (a gateway
    /// acts without a human, RFC 8098 §3.2.6.1), no modifiers.
    pub fn automatic(kind: DispositionType) -> Self {
        Disposition {
            action_mode: "automatic-action".to_string(),
            sending_mode: "MDN-sent-automatically".to_string(),
            kind,
            modifiers: Vec::new(),
        }
    }

    /// Reads a Disposition field value. Whitespace around every separator and comments
    /// are allowed; keywords compare case-insensitively and known ones are returned in
    /// their canonical spelling; unknown ones are kept.
    ///
    /// RFC 8098 §3.2.6: `disposition-mode ";" disposition-type ["/" modifier *("," modifier)]`
    /// with `disposition-mode = action-mode "/" sending-mode`.
    pub fn parse(value: &str) -> Result<Self, MdnError> {
        let bad = || MdnError::MalformedDisposition(clip(value));
        let clean = strip_comments(value);
        let (mode, rest) = clean.split_once(';').ok_or_else(bad)?;
        let (action, sending) = mode.split_once('/').ok_or_else(bad)?;
        let (action, sending) = (action.trim(), sending.trim());
        if action.is_empty() || sending.is_empty() {
            return Err(bad());
        }
        let (kind, modifiers) = match rest.split_once('/') {
            Some((kind, mods)) => (kind, Some(mods)),
            None => (rest, None),
        };
        let kind = kind.trim();
        if kind.is_empty() || kind.contains(char::is_whitespace) {
            return Err(bad());
        }
        let modifiers = modifiers
            .map(|m| {
                m.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Disposition {
            action_mode: canonical(action, &["automatic-action", "manual-action"]),
            sending_mode: canonical(sending, &["MDN-sent-automatically", "MDN-sent-manually"]),
            kind: DispositionType::parse(kind),
            modifiers,
        })
    }
}

fn canonical(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(word))
        .map_or_else(|| word.to_string(), |k| (*k).to_string())
}

impl fmt::Display for Disposition {
    /// `automatic-action/MDN-sent-automatically; processed`, with `/mod1,mod2` when there
    /// are modifiers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}; {}",
            self.action_mode, self.sending_mode, self.kind
        )?;
        if !self.modifiers.is_empty() {
            write!(f, "/{}", self.modifiers.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_rfc8098_3_2_6() {
        let d = Disposition::automatic(DispositionType::Processed);
        assert_eq!(
            d.to_string(),
            "automatic-action/MDN-sent-automatically; processed"
        );
        let mut d = Disposition::automatic(DispositionType::Failed);
        d.modifiers = vec!["error".into(), "x-foo".into()];
        assert_eq!(
            d.to_string(),
            "automatic-action/MDN-sent-automatically; failed/error,x-foo"
        );
    }

    #[test]
    fn parses_with_extra_whitespace_comments_and_case() {
        let d = Disposition::parse(
            " Automatic-Action / mdn-sent-automatically (by the HISP) ;  Dispatched / Error , x-y ",
        )
        .unwrap();
        assert_eq!(d.action_mode, "automatic-action");
        assert_eq!(d.sending_mode, "MDN-sent-automatically");
        assert_eq!(d.kind, DispositionType::Dispatched);
        assert_eq!(d.modifiers, vec!["Error".to_string(), "x-y".to_string()]);
        let d = Disposition::parse("automatic-action/MDN-sent-automatically;processed").unwrap();
        assert_eq!(d, Disposition::automatic(DispositionType::Processed));
    }

    #[test]
    fn rejects_a_disposition_without_mode_or_type_rfc8098_3_2_6() {
        for v in [
            "processed",
            "automatic-action; processed",
            "automatic-action/MDN-sent-automatically;",
            "/; processed",
            "a/b; two words",
        ] {
            let e = Disposition::parse(v).unwrap_err();
            assert_eq!(e.code(), "malformed-disposition", "{v}");
        }
    }

    #[test]
    fn round_trips_every_type() {
        for k in [
            "displayed",
            "deleted",
            "dispatched",
            "processed",
            "failed",
            "denied",
            "x-new",
        ] {
            let d = Disposition::automatic(DispositionType::parse(k));
            assert_eq!(Disposition::parse(&d.to_string()).unwrap(), d);
        }
    }
}
