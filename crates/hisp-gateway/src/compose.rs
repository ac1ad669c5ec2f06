//! Messages a portal user writes, composed as MIME with `mail-builder`
//! (never by hand): From the user's address, To the recipients, Subject, a
//! plain-text body and attachments, Date and Message-ID; and what a reply
//! takes from the message it answers. Bytes in, bytes out: the checks and
//! the queue are `portal_submit`'s.
//!
//! Attachments are held to limits ([`AttachmentLimits`]), to the types a
//! patient portal exchanges (PDF, PNG, JPEG, plain text), checked against
//! the file's first bytes with `infer` rather than trusting the declared
//! type, and their names are cleaned of paths and control characters.

use std::borrow::Cow;

use hisp_store::DirectAddress;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;
use mail_parser::{HeaderValue, MessageParser};
use time::OffsetDateTime;

/// How many attachments, and how many bytes of them in all, one message
/// may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentLimits {
    /// The most files.
    pub max_files: usize,
    /// The most bytes of all files together (before transfer encoding).
    pub max_total_bytes: u64,
}

impl Default for AttachmentLimits {
    /// 5 files and 25 MiB in all.
    fn default() -> Self {
        AttachmentLimits {
            max_files: 5,
            max_total_bytes: 25 * 1024 * 1024,
        }
    }
}

/// Room in a composed portal message for everything but the attachments'
/// encoded bytes: the header, the text (the API takes at most 1 MiB of
/// request beyond the attachments, and an encoded text part can grow by a
/// third), the MIME structure.
const TEXT_AND_HEADER_ROOM: u64 = 2 * 1024 * 1024;

impl AttachmentLimits {
    /// The largest message the portal can compose within these limits: the
    /// attachments in base64 (4 characters per 3 bytes, in lines of 76 and
    /// CRLF, RFC 2045 §6.8) and [`TEXT_AND_HEADER_ROOM`]. The backbone
    /// listener's default limit is taken from it too, so that what a portal
    /// sends passes between two hisp instances once sealed (issue 13); a
    /// composed message over it is refused ([`ComposeError::MessageTooLarge`]).
    pub fn composed_size_bound(&self) -> u64 {
        let base64 = self.max_total_bytes.div_ceil(3).saturating_mul(4);
        let lines = base64.div_ceil(76).saturating_mul(2);
        base64
            .saturating_add(lines)
            .saturating_add(TEXT_AND_HEADER_ROOM)
    }
}

/// A file the user attaches, as the portal received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// The file name as given (cleaned by [`sanitize_file_name`]).
    pub name: String,
    /// The declared content type (parameters ignored).
    pub content_type: String,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// A new message as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Draft {
    /// The recipients' Direct addresses as given.
    pub to: Vec<String>,
    /// The Subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The attachments, in order.
    pub attachments: Vec<NewAttachment>,
}

/// The content types an attachment may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    /// `application/pdf`.
    Pdf,
    /// `image/png`.
    Png,
    /// `image/jpeg`.
    Jpeg,
    /// `text/plain` (UTF-8).
    Text,
}

impl AttachmentKind {
    /// Every kind accepted.
    pub const ALL: [AttachmentKind; 4] = [
        AttachmentKind::Pdf,
        AttachmentKind::Png,
        AttachmentKind::Jpeg,
        AttachmentKind::Text,
    ];

    /// The MIME type.
    pub fn mime_type(self) -> &'static str {
        match self {
            AttachmentKind::Pdf => "application/pdf",
            AttachmentKind::Png => "image/png",
            AttachmentKind::Jpeg => "image/jpeg",
            AttachmentKind::Text => "text/plain",
        }
    }

    /// The usual file name extension (for a fallback name).
    pub fn extension(self) -> &'static str {
        match self {
            AttachmentKind::Pdf => "pdf",
            AttachmentKind::Png => "png",
            AttachmentKind::Jpeg => "jpg",
            AttachmentKind::Text => "txt",
        }
    }

    /// The kind a declared content type names (letter case and parameters
    /// ignored), if it is one accepted.
    pub fn from_declared(content_type: &str) -> Option<AttachmentKind> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        AttachmentKind::ALL
            .into_iter()
            .find(|k| k.mime_type().eq_ignore_ascii_case(essence))
    }
}

/// Why a message cannot be composed. The portal answers each with its
/// status: [`is_too_large`](Self::is_too_large) ones with 413, the others
/// with 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// More attachments than the limit.
    #[error("{count} attachments: at most {max} may be sent with one message")]
    TooManyFiles {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The attachments together are larger than the limit.
    #[error(
        "the attachments hold {total} bytes: at most {max} bytes may be sent with one message"
    )]
    TooLarge {
        /// Their bytes together.
        total: u64,
        /// The limit.
        max: u64,
    },
    /// The composed message is larger than the limits allow (a text too
    /// long for the room beside the attachments).
    #[error("the composed message holds {size} bytes: at most {max} bytes may be sent")]
    MessageTooLarge {
        /// The composed message's bytes.
        size: u64,
        /// [`AttachmentLimits::composed_size_bound`].
        max: u64,
    },
    /// The declared content type is not one accepted.
    #[error("attachment {name:?}: content type {declared:?} is not accepted (PDF, PNG, JPEG or plain text only)")]
    UnsupportedType {
        /// The sanitised file name.
        name: String,
        /// The declared type.
        declared: String,
    },
    /// The file's bytes are not what its declared type says.
    #[error("attachment {name:?}: declared {declared} but its bytes are {found}")]
    TypeMismatch {
        /// The sanitised file name.
        name: String,
        /// The declared type.
        declared: String,
        /// What the bytes are (a MIME type, or a description).
        found: String,
    },
    /// A header text (Subject, display name) holds a control character
    /// (RFC 5322 §2.2: header fields are printable text).
    #[error("the {field} may not contain control characters such as line breaks")]
    ControlCharacter {
        /// Which text.
        field: &'static str,
    },
    /// No recipient.
    #[error("the message has no recipient")]
    NoRecipient,
    /// The message replied to names no sender to answer.
    #[error("the original message has no From address to reply to")]
    NoOriginalSender,
    /// The message replied to has a From that is no Direct address.
    #[error("the original message's From address {0:?} is not a Direct address")]
    BadOriginalSender(String),
}

impl ComposeError {
    /// Whether the refusal is about size (413 Content Too Large), not
    /// content (422).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            ComposeError::TooManyFiles { .. }
                | ComposeError::TooLarge { .. }
                | ComposeError::MessageTooLarge { .. }
        )
    }

    /// A stable code for the API: `too-many-files`, `too-large`,
    /// `unsupported-type`, `type-mismatch`, `bad-header-text`,
    /// `no-recipient`, `no-original-sender`.
    pub fn code(&self) -> &'static str {
        match self {
            ComposeError::TooManyFiles { .. } => "too-many-files",
            ComposeError::TooLarge { .. } | ComposeError::MessageTooLarge { .. } => "too-large",
            ComposeError::UnsupportedType { .. } => "unsupported-type",
            ComposeError::TypeMismatch { .. } => "type-mismatch",
            ComposeError::ControlCharacter { .. } => "bad-header-text",
            ComposeError::NoRecipient => "no-recipient",
            ComposeError::NoOriginalSender | ComposeError::BadOriginalSender(_) => {
                "no-original-sender"
            }
        }
    }
}

/// The most bytes of a file name kept (a common file system limit).
const MAX_NAME_BYTES: usize = 200;

/// Whether a character may not stand in a file name shown to a user or
/// written to a disk: control characters (C0, DEL, C1) and the invisible
/// direction and width marks that make `exe.pdf` read as `fdp.exe`.
fn unwanted_in_name(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A file name safe to put into a Content-Disposition and to offer for
/// saving: the last segment of any path (`/` or `\`), control characters
/// and direction marks removed, outer spaces and leading dots trimmed (no
/// hidden files, no `..`), at most 200 bytes; `fallback` when nothing is
/// left.
pub fn sanitize_file_name(name: &str, fallback: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|&c| !unwanted_in_name(c)).collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        fallback.to_string()
    } else {
        out
    }
}

/// Judges an attachment's bytes against its declared type: PDF, PNG and
/// JPEG must be recognised as such by their first bytes (`infer`); plain
/// text must be UTF-8 without NUL and not be recognised as a binary type.
/// `name` is the sanitised name, for the error.
pub fn check_attachment_type(
    name: &str,
    declared: &str,
    data: &[u8],
) -> Result<AttachmentKind, ComposeError> {
    let kind =
        AttachmentKind::from_declared(declared).ok_or_else(|| ComposeError::UnsupportedType {
            name: name.to_string(),
            declared: declared.to_string(),
        })?;
    let sniffed = infer::get(data);
    let mismatch = |found: String| ComposeError::TypeMismatch {
        name: name.to_string(),
        declared: kind.mime_type().to_string(),
        found,
    };
    match kind {
        AttachmentKind::Text => {
            if let Some(t) = sniffed.filter(|t| t.matcher_type() != infer::MatcherType::Text) {
                return Err(mismatch(t.mime_type().to_string()));
            }
            match std::str::from_utf8(data) {
                Ok(text) if !text.contains('\0') => Ok(kind),
                Ok(_) => Err(mismatch("text containing NUL".into())),
                Err(_) => Err(mismatch("not UTF-8 text".into())),
            }
        }
        _ => match sniffed {
            Some(t) if t.mime_type() == kind.mime_type() => Ok(kind),
            Some(t) => Err(mismatch(t.mime_type().to_string())),
            None => Err(mismatch("of no recognised type".into())),
        },
    }
}

/// An attachment that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedAttachment {
    /// The sanitised file name.
    pub name: String,
    /// Its kind, from the declared type and confirmed by its bytes.
    pub kind: AttachmentKind,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Checks the attachments against `limits` (count first, then total size),
/// then each one's type; names are sanitised, `attachment-N.EXT` when
/// nothing is left of one.
pub fn check_attachments(
    attachments: Vec<NewAttachment>,
    limits: &AttachmentLimits,
) -> Result<Vec<CheckedAttachment>, ComposeError> {
    if attachments.len() > limits.max_files {
        return Err(ComposeError::TooManyFiles {
            count: attachments.len(),
            max: limits.max_files,
        });
    }
    let total: u64 = attachments.iter().map(|a| a.data.len() as u64).sum();
    if total > limits.max_total_bytes {
        return Err(ComposeError::TooLarge {
            total,
            max: limits.max_total_bytes,
        });
    }
    attachments
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let ext = AttachmentKind::from_declared(&a.content_type)
                .map_or("bin", AttachmentKind::extension);
            let name = sanitize_file_name(&a.name, &format!("attachment-{}.{ext}", i + 1));
            let kind = check_attachment_type(&name, &a.content_type, &a.data)?;
            Ok(CheckedAttachment {
                name,
                kind,
                data: a.data,
            })
        })
        .collect()
}

/// Where a reply sits in a conversation (RFC 5322 §3.6.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Thread {
    /// The Message-ID replied to, without angle brackets.
    pub in_reply_to: Option<String>,
    /// The conversation's Message-IDs, oldest first, without brackets.
    pub references: Vec<String>,
}

/// What a message is made of, checked.
#[derive(Debug, Clone)]
pub struct Composition<'a> {
    /// The sender (the portal user's own address).
    pub from: &'a DirectAddress,
    /// Its display name, if any.
    pub display_name: Option<&'a str>,
    /// The recipients, distinct.
    pub to: &'a [DirectAddress],
    /// The Subject.
    pub subject: &'a str,
    /// The plain-text body.
    pub text: &'a str,
    /// The attachments.
    pub attachments: &'a [CheckedAttachment],
    /// In-Reply-To and References of a reply.
    pub thread: Option<&'a Thread>,
    /// The Date.
    pub date: OffsetDateTime,
    /// The Message-ID, without angle brackets.
    pub message_id: &'a str,
}

/// Refuses a header text holding a control character: mail-builder would
/// write a CR or LF in it as it is, and a line break in a Subject could
/// start a header field of its own (RFC 5322 §2.2).
pub fn header_text(field: &'static str, text: &str) -> Result<(), ComposeError> {
    if text.chars().any(char::is_control) {
        return Err(ComposeError::ControlCharacter { field });
    }
    Ok(())
}

/// The message as MIME: a text/plain body, or multipart/mixed with the
/// text first and each attachment (`Content-Disposition: attachment` with
/// its name) after it; From, To, Subject, Date and Message-ID, and
/// In-Reply-To and References for a reply. mail-builder chooses the
/// transfer encodings and encodes non-ASCII header text (RFC 2047).
pub fn compose(c: &Composition<'_>) -> Result<Vec<u8>, ComposeError> {
    header_text("subject", c.subject)?;
    if let Some(name) = c.display_name {
        header_text("display name", name)?;
    }
    if c.to.is_empty() {
        return Err(ComposeError::NoRecipient);
    }
    let from = c.from.to_string();
    let from = match c.display_name.filter(|n| !n.trim().is_empty()) {
        Some(name) => Address::new_address(Some(name.trim()), from),
        None => Address::new_address(None::<&str>, from),
    };
    let to: Vec<Address<'_>> =
        c.to.iter()
            .map(|a| Address::new_address(None::<&str>, a.to_string()))
            .collect();
    let mut builder = MessageBuilder::new()
        .from(from)
        .to(Address::new_list(to))
        .subject(c.subject)
        .header("Date", Raw::new(hisp_date::rfc5322(c.date)))
        .message_id(c.message_id)
        .text_body(Cow::Borrowed(c.text));
    if let Some(thread) = c.thread {
        if let Some(id) = &thread.in_reply_to {
            builder = builder.in_reply_to(id.as_str());
        }
        if !thread.references.is_empty() {
            builder = builder.references(MessageId::new_list(
                thread.references.iter().map(String::as_str),
            ));
        }
    }
    for a in c.attachments {
        builder = builder.attachment(a.kind.mime_type(), a.name.as_str(), a.data.as_slice());
    }
    let mut out = Vec::new();
    builder.serialize(&mut out);
    Ok(out)
}

/// `Re: ` and the original subject, without piling up prefixes: any number
/// of leading `Re:` (in any letter case) is one `Re: `.
pub fn reply_subject(original: &str) -> String {
    let mut rest = original.trim();
    while rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("re:") {
        rest = rest[3..].trim_start();
    }
    format!("Re: {rest}")
}

/// What a reply takes from the message it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyBasis {
    /// The original sender: the reply's To.
    pub to: DirectAddress,
    /// The reply's Subject.
    pub subject: String,
    /// The reply's In-Reply-To and References.
    pub thread: Thread,
}

/// Reads the original's From, Subject, Message-ID and References (or
/// In-Reply-To) and makes the reply's To, Subject and thread fields: RFC
/// 5322 §3.6.4, In-Reply-To is the original's Message-ID and References
/// the original's References (or, lacking them, its single In-Reply-To)
/// followed by that Message-ID.
pub fn reply_basis(original: &[u8]) -> Result<ReplyBasis, ComposeError> {
    let parsed = MessageParser::new()
        .parse_headers(original)
        .ok_or(ComposeError::NoOriginalSender)?;
    let from = parsed
        .from()
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .ok_or(ComposeError::NoOriginalSender)?;
    let to = DirectAddress::parse(from)
        .map_err(|_| ComposeError::BadOriginalSender(from.to_string()))?;
    let subject = reply_subject(parsed.subject().unwrap_or(""));
    let message_id = parsed.message_id().map(str::to_string);
    let ids = |v: &HeaderValue<'_>| -> Vec<String> {
        match v {
            HeaderValue::Text(id) => vec![id.to_string()],
            HeaderValue::TextList(ids) => ids.iter().map(|s| s.to_string()).collect(),
            _ => Vec::new(),
        }
    };
    let mut references = ids(parsed.references());
    if references.is_empty() {
        let in_reply_to = ids(parsed.in_reply_to());
        if in_reply_to.len() == 1 {
            references = in_reply_to;
        }
    }
    if let Some(id) = &message_id {
        references.push(id.clone());
    }
    Ok(ReplyBasis {
        to,
        subject,
        thread: Thread {
            in_reply_to: message_id,
            references,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MimeHeaders, PartType};

    /// The first bytes of real files of each type.
    const PDF: &[u8] =
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";
    const JPEG: &[u8] =
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9";

    fn addr(s: &str) -> DirectAddress {
        DirectAddress::parse(s).unwrap()
    }

    fn attachment(name: &str, content_type: &str, data: &[u8]) -> NewAttachment {
        NewAttachment {
            name: name.into(),
            content_type: content_type.into(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn real_magic_bytes_confirm_their_declared_type() {
        assert_eq!(
            check_attachment_type("a.pdf", "application/pdf", PDF),
            Ok(AttachmentKind::Pdf)
        );
        assert_eq!(
            check_attachment_type("a.png", "image/png", PNG),
            Ok(AttachmentKind::Png)
        );
        assert_eq!(
            check_attachment_type("a.jpg", "IMAGE/JPEG; x=y", JPEG),
            Ok(AttachmentKind::Jpeg)
        );
        assert_eq!(
            check_attachment_type("a.txt", "text/plain; charset=utf-8", "Grüße\r\n".as_bytes()),
            Ok(AttachmentKind::Text)
        );
    }

    #[test]
    fn bytes_that_are_not_the_declared_type_are_refused() {
        let e = check_attachment_type("scan.pdf", "application/pdf", PNG).unwrap_err();
        assert_eq!(
            e,
            ComposeError::TypeMismatch {
                name: "scan.pdf".into(),
                declared: "application/pdf".into(),
                found: "image/png".into()
            }
        );
        assert_eq!(e.code(), "type-mismatch");
        assert!(!e.is_too_large());
        assert!(check_attachment_type("x.png", "image/png", b"just text").is_err());
        assert!(check_attachment_type("x.jpg", "image/jpeg", PDF).is_err());
        // Text must be UTF-8 without NUL, and not a binary type.
        assert!(check_attachment_type("x.txt", "text/plain", b"a\0b").is_err());
        assert!(check_attachment_type("x.txt", "text/plain", b"\xff\xfe\xfd").is_err());
        assert!(check_attachment_type("x.txt", "text/plain", PDF).is_err());
        assert!(check_attachment_type("x.txt", "text/plain", PNG).is_err());
    }

    #[test]
    fn other_declared_types_are_unsupported() {
        let e = check_attachment_type("a.exe", "application/x-msdownload", b"MZ").unwrap_err();
        assert_eq!(e.code(), "unsupported-type");
        assert!(check_attachment_type("a.html", "text/html", b"<p>").is_err());
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(sanitize_file_name("../../etc/passwd", "f"), "passwd");
        assert_eq!(
            sanitize_file_name("C:\\Users\\x\\scan.pdf", "f"),
            "scan.pdf"
        );
        assert_eq!(
            sanitize_file_name("re\r\nport\x1b[31m.pdf", "f"),
            "report[31m.pdf"
        );
        assert_eq!(sanitize_file_name("inv\u{202e}fdp.exe", "f"), "invfdp.exe");
        assert_eq!(sanitize_file_name(".hidden", "f"), "hidden");
        assert_eq!(sanitize_file_name("..", "fallback.txt"), "fallback.txt");
        assert_eq!(sanitize_file_name("dir/", "fallback.txt"), "fallback.txt");
        assert_eq!(sanitize_file_name("  \t ", "fallback.txt"), "fallback.txt");
        let long = sanitize_file_name(&"é".repeat(300), "f");
        assert!(long.len() <= MAX_NAME_BYTES && long.chars().all(|c| c == 'é'));
    }

    #[test]
    fn limits_count_files_before_bytes() {
        let limits = AttachmentLimits {
            max_files: 2,
            max_total_bytes: 100,
        };
        let three = vec![attachment("a.txt", "text/plain", b"a"); 3];
        let e = check_attachments(three, &limits).unwrap_err();
        assert_eq!(e, ComposeError::TooManyFiles { count: 3, max: 2 });
        assert!(e.is_too_large());
        let big = vec![attachment("a.txt", "text/plain", &[b'a'; 101])];
        let e = check_attachments(big, &limits).unwrap_err();
        assert_eq!(
            e,
            ComposeError::TooLarge {
                total: 101,
                max: 100
            }
        );
        assert_eq!(e.code(), "too-large");
        let exact = vec![attachment("/x/", "text/plain", &[b'a'; 100])];
        let ok = check_attachments(exact, &limits).unwrap();
        assert_eq!(ok[0].name, "attachment-1.txt");
        let d = AttachmentLimits::default();
        assert_eq!((d.max_files, d.max_total_bytes), (5, 25 * 1024 * 1024));
    }

    #[test]
    fn a_composed_message_parses_back_with_every_part() {
        let from = addr("patient@a.example");
        let to = [addr("doc@b.example"), addr("nurse@b.example")];
        let attachments = check_attachments(
            vec![
                attachment("../lab.pdf", "application/pdf", PDF),
                attachment("x-ray.png", "image/png", PNG),
                attachment("notes.txt", "text/plain", "line ü\n".as_bytes()),
            ],
            &AttachmentLimits::default(),
        )
        .unwrap();
        let date = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let bytes = compose(&Composition {
            from: &from,
            display_name: Some("Pat Ient"),
            to: &to,
            subject: "Lab results – März",
            text: "Dear doctor,\nsee attached.\n",
            attachments: &attachments,
            thread: None,
            date,
            message_id: "m1@a.example",
        })
        .unwrap();
        let m = MessageParser::new().parse(&bytes).unwrap();
        let f = m.from().unwrap().first().unwrap();
        assert_eq!(f.address(), Some("patient@a.example"));
        assert_eq!(f.name(), Some("Pat Ient"));
        let tos: Vec<_> = m.to().unwrap().iter().filter_map(|a| a.address()).collect();
        assert_eq!(tos, ["doc@b.example", "nurse@b.example"]);
        assert_eq!(m.subject(), Some("Lab results – März"));
        assert_eq!(m.message_id(), Some("m1@a.example"));
        assert_eq!(m.date().unwrap().to_timestamp(), 1_800_000_000);
        assert_eq!(
            m.body_text(0).unwrap().replace("\r\n", "\n"),
            "Dear doctor,\nsee attached.\n"
        );
        assert_eq!(m.attachment_count(), 3);
        let pdf = m.attachment(0).unwrap();
        assert_eq!(pdf.attachment_name(), Some("lab.pdf"));
        assert_eq!(pdf.content_type().unwrap().ctype(), "application");
        assert_eq!(pdf.contents(), PDF);
        assert_eq!(m.attachment(1).unwrap().contents(), PNG);
        let txt = m.attachment(2).unwrap();
        let txt_bytes = match &txt.body {
            PartType::Text(t) => t.as_bytes().to_vec(),
            _ => txt.contents().to_vec(),
        };
        assert_eq!(txt_bytes, "line ü\n".as_bytes());
        // The header holds no bare CR or NUL and no Bcc.
        assert!(crate::check_header_bytes(&bytes).is_ok());
        assert!(m.header("Bcc").is_none());
    }

    #[test]
    fn a_line_break_in_the_subject_is_refused_not_written() {
        let from = addr("patient@a.example");
        let to = [addr("doc@b.example")];
        let base = Composition {
            from: &from,
            display_name: None,
            to: &to,
            subject: "x\r\nBcc: spy@evil.example",
            text: "",
            attachments: &[],
            thread: None,
            date: OffsetDateTime::UNIX_EPOCH,
            message_id: "m@a.example",
        };
        assert_eq!(
            compose(&base).unwrap_err(),
            ComposeError::ControlCharacter { field: "subject" }
        );
        let named = Composition {
            subject: "ok",
            display_name: Some("Eve\r\nBcc: x@y"),
            ..base
        };
        assert!(compose(&named).is_err());
    }

    #[test]
    fn re_is_never_doubled_in_any_letter_case() {
        assert_eq!(reply_subject("Lab results"), "Re: Lab results");
        assert_eq!(reply_subject("Re: Lab results"), "Re: Lab results");
        assert_eq!(reply_subject("RE: re:Lab results"), "Re: Lab results");
        assert_eq!(reply_subject("rE:   x"), "Re: x");
        assert_eq!(reply_subject(""), "Re: ");
        // Only a leading prefix counts.
        assert_eq!(reply_subject("Are: you there"), "Re: Are: you there");
    }

    #[test]
    fn a_reply_answers_the_sender_and_extends_the_thread_rfc5322_3_6_4() {
        let original = b"From: Dr Bob <Bob@B.example>\r\n\
To: patient@a.example\r\n\
Subject: RE: Lab results\r\n\
Message-ID: <m2@b.example>\r\n\
References: <m0@a.example> <m1@a.example>\r\n\
In-Reply-To: <m1@a.example>\r\n\
\r\n\
body\r\n";
        let basis = reply_basis(original).unwrap();
        assert_eq!(basis.to, addr("bob@b.example"));
        assert_eq!(basis.subject, "Re: Lab results");
        assert_eq!(basis.thread.in_reply_to.as_deref(), Some("m2@b.example"));
        assert_eq!(
            basis.thread.references,
            ["m0@a.example", "m1@a.example", "m2@b.example"]
        );

        // No References: the single In-Reply-To stands in for them.
        let only_irt = b"From: bob@b.example\r\nSubject: x\r\nMessage-ID: <m2@b>\r\nIn-Reply-To: <m1@a>\r\n\r\n";
        let basis = reply_basis(only_irt).unwrap();
        assert_eq!(basis.thread.references, ["m1@a", "m2@b"]);

        // The composed reply carries them.
        let from = addr("patient@a.example");
        let to = [basis.to.clone()];
        let bytes = compose(&Composition {
            from: &from,
            display_name: None,
            to: &to,
            subject: &basis.subject,
            text: "thanks",
            attachments: &[],
            thread: Some(&basis.thread),
            date: OffsetDateTime::UNIX_EPOCH,
            message_id: "m3@a.example",
        })
        .unwrap();
        let m = MessageParser::new().parse(&bytes).unwrap();
        assert_eq!(m.in_reply_to().as_text(), Some("m2@b"));
        let refs: Vec<String> = match m.references() {
            HeaderValue::TextList(l) => l.iter().map(|s| s.to_string()).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(refs, ["m1@a", "m2@b"]);
        assert_eq!(m.subject(), Some("Re: x"));

        assert_eq!(
            reply_basis(b"Subject: x\r\n\r\n").unwrap_err(),
            ComposeError::NoOriginalSender
        );
    }

    #[test]
    fn a_message_at_the_attachment_limits_composes_within_the_bound_issue_13() {
        let limits = AttachmentLimits {
            max_files: 5,
            max_total_bytes: 5 * 200_000,
        };
        // Five PDFs filling the allowance, and a text of 1 MiB of
        // characters that must be encoded.
        let files = (0..5)
            .map(|i| {
                let mut data = PDF.to_vec();
                data.resize(200_000, (i * 37) as u8);
                attachment(&format!("scan-{i}.pdf"), "application/pdf", &data)
            })
            .collect();
        let attachments = check_attachments(files, &limits).unwrap();
        let text = "Blutdruck \u{e4}\u{f6}\u{fc} \u{2013} 120/80\n".repeat(1024 * 1024 / 32);
        let from = addr("patient@a.example");
        let to = [addr("doc@b.example")];
        let bytes = compose(&Composition {
            from: &from,
            display_name: Some("Pat Ient"),
            to: &to,
            subject: "Readings",
            text: &text,
            attachments: &attachments,
            thread: None,
            date: OffsetDateTime::UNIX_EPOCH,
            message_id: "m1@a.example",
        })
        .unwrap();
        let bound = limits.composed_size_bound();
        assert!(
            (bytes.len() as u64) <= bound,
            "{} bytes composed, bound {bound}",
            bytes.len()
        );
        // The bound is not loose by more than the room kept for the text.
        assert!(bound - (bytes.len() as u64) < 2 * 1024 * 1024, "{bound}");
    }
}
