//! `[notify]` and `[portal] public_url`: the e-mail notices of new secure
//! mail to portal users (issue 11 item 9), checked and turned into the
//! worker's [`NoticeSettings`].

use std::time::Duration;

use hisp_gateway::NoticeSettings;
use hisp_store::DirectAddress;
use tracing::info;

use crate::config::Config;

/// Longest `[portal] public_url` taken: a link, not a document.
const MAX_URL: usize = 2000;

/// The notice settings, or `None` without `[notify] smtp` (said once in the
/// log). A bad smart host, sender, URL or retry delay is an error naming
/// the key, so `hisp serve` stops at start rather than at the first notice.
pub(crate) fn settings(config: &Config) -> anyhow::Result<Option<NoticeSettings>> {
    let Some(smtp) = &config.notify.smtp else {
        info!("[notify] smtp is not set: no e-mail notices of new secure mail are queued");
        return Ok(None);
    };
    let (smart_host, port) = host_port(smtp).ok_or_else(|| {
        anyhow::anyhow!(
            "[notify] smtp {smtp:?}: give the smart host as host:port, such as \"127.0.0.1:25\""
        )
    })?;
    let from = match &config.notify.from {
        None => None,
        Some(text) => Some(DirectAddress::parse(text).map_err(|e| {
            anyhow::anyhow!(
                "[notify] from {text:?} is not a usable address: {}",
                e.reason()
            )
        })?),
    };
    let Some(public_url) = &config.portal.public_url else {
        anyhow::bail!(
            "[notify] smtp is set but [portal] public_url is not: a notice says only where to read the new message"
        );
    };
    check_url(public_url)?;
    if config.notify.retry_base_secs == 0 {
        anyhow::bail!(
            "[notify] retry_base_secs is 0: give at least 1 second between attempts at a notice"
        );
    }
    info!(smart_host = %smtp, portal = %public_url, "e-mail notices of new secure mail go through the smart host");
    Ok(Some(NoticeSettings {
        smart_host,
        port,
        from,
        public_url: public_url.clone(),
        retry_base: Duration::from_secs(config.notify.retry_base_secs),
    }))
}

/// `host:port` (an IPv6 address in brackets) into its parts.
fn host_port(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':');
    (!host.is_empty() && host.chars().all(plain)).then(|| (host.to_string(), port))
}

/// An http(s) URL without spaces or control characters: it goes into the
/// notice's text as it is.
fn check_url(url: &str) -> anyhow::Result<()> {
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !scheme_ok || !clean || url.len() > MAX_URL {
        anyhow::bail!(
            "[portal] public_url {url:?}: give the portal's http:// or https:// address, without spaces, at most {MAX_URL} characters"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    #[test]
    fn without_a_smart_host_there_are_no_notices() {
        assert!(settings(&config("")).unwrap().is_none());
    }

    #[test]
    fn a_smart_host_needs_the_portal_url_and_takes_host_port() {
        let s = settings(&config(
            "[notify]\nsmtp = \"mail.internal:2525\"\n[portal]\npublic_url = \"https://p.example/\"\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!((s.smart_host.as_str(), s.port), ("mail.internal", 2525));
        assert!(s.from.is_none());
        assert_eq!(s.retry_base, Duration::from_secs(60));
        let v6 = settings(&config(
            "[notify]\nsmtp = \"[::1]:25\"\n[portal]\npublic_url = \"http://p/\"\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!((v6.smart_host.as_str(), v6.port), ("::1", 25));
    }

    #[test]
    fn bad_notify_settings_are_refused_naming_the_key() {
        let url = "[portal]\npublic_url = \"https://p.example/\"\n";
        for (text, want) in [
            (
                "[notify]\nsmtp = \"127.0.0.1:25\"\n".to_string(),
                "[portal] public_url is not",
            ),
            (
                format!("[notify]\nsmtp = \"127.0.0.1\"\n{url}"),
                "[notify] smtp \"127.0.0.1\"",
            ),
            (format!("[notify]\nsmtp = \"h:0\"\n{url}"), "[notify] smtp"),
            (
                format!("[notify]\nsmtp = \"h x:25\"\n{url}"),
                "[notify] smtp",
            ),
            (
                format!("[notify]\nsmtp = \"h:25\"\nfrom = \"no reply\"\n{url}"),
                "[notify] from \"no reply\"",
            ),
            (
                format!("[notify]\nsmtp = \"h:25\"\nretry_base_secs = 0\n{url}"),
                "retry_base_secs is 0",
            ),
            (
                "[notify]\nsmtp = \"h:25\"\n[portal]\npublic_url = \"ftp://p/\"\n".to_string(),
                "[portal] public_url \"ftp://p/\"",
            ),
            (
                "[notify]\nsmtp = \"h:25\"\n[portal]\npublic_url = \"https://p/\\r\\nBcc: x\"\n"
                    .to_string(),
                "[portal] public_url",
            ),
        ] {
            let e = settings(&config(&text)).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
