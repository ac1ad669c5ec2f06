#!/usr/bin/env bash
# Makes the S/MIME test vectors under tests/vectors/ with the openssl command line
# (OpenSSL 3.0) and nothing else that does cryptography or MIME.
#
# Run once by hand; the outputs are committed and the tests read them (the tests never
# run this script). Running it again replaces every output: new keys, new
# signatures, same file names. See README.md for what each file is.
#
#   tests/vectors/make.sh
#
# Every "ok" vector is checked here with openssl itself (decrypt, then verify at
# ATTIME) and its expected inner bytes are compared with what openssl recovers, so
# an expectation never rests on hisp's own reading of the message.
set -euo pipefail
umask 022
export LC_ALL=C

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

# The time at which the vectors are checked, here and in the tests: 2027-06-01T00:00:00Z.
ATTIME=1811808000
# Validity of the test PKI: 20 years from 2026-01-01.
NOT_BEFORE=260101000000Z
NOT_AFTER=460101000000Z

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

openssl version | grep -q '^OpenSSL 3\.' || { echo "make.sh needs OpenSSL 3" >&2; exit 1; }

rm -rf pki messages
rm -f ./*.eml ./*.json
mkdir -p pki messages

# ---------------------------------------------------------------------------
# Test PKI
# ---------------------------------------------------------------------------

cat >"$WORK/ca.cnf" <<'EOF'
[ ca ]
default_ca = CA_default

[ CA_default ]
dir             = ${ENV::CA_DIR}
database        = $dir/index.txt
new_certs_dir   = $dir/newcerts
serial          = $dir/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
copy_extensions = none
email_in_dn     = no
preserve        = yes

[ policy_any ]
commonName             = supplied
organizationName       = optional
emailAddress           = optional

[ req ]
distinguished_name = req_dn
prompt             = no

[ req_dn ]
CN = unused

[ v3_root ]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ v3_leaf ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = emailProtection
subjectAltName         = email:${ENV::LEAF_EMAIL}
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
export LEAF_EMAIL=unused@invalid.example CA_DIR=unused

genkey() { # NAME BITS
    openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "pki/$1.key" 2>/dev/null
}

new_ca_dir() { # NAME FIRST_SERIAL
    mkdir -p "$WORK/$1/newcerts"
    : >"$WORK/$1/index.txt"
    echo "$2" >"$WORK/$1/serial"
}

root() { # NAME "SUBJECT" FIRST_SERIAL
    local name=$1 subject=$2
    new_ca_dir "$name" "$3"
    genkey "$name" 2048
    openssl req -new -config "$WORK/ca.cnf" -key "pki/$name.key" -subj "$subject" \
        -out "$WORK/$name.csr"
    CA_DIR="$WORK/$name" openssl ca -batch -notext -config "$WORK/ca.cnf" -selfsign \
        -keyfile "pki/$name.key" -in "$WORK/$name.csr" -out "pki/$name.pem" \
        -startdate "$NOT_BEFORE" -enddate "$NOT_AFTER" -extensions v3_root 2>/dev/null
}

leaf() { # ADDRESS ISSUER BITS STARTDATE ENDDATE
    local address=$1 issuer=$2 bits=$3 name=${1%%@*}
    local domain=${address#*@}
    genkey "$name" "$bits"
    openssl req -new -config "$WORK/ca.cnf" -key "pki/$name.key" \
        -subj "/CN=$address/O=${domain} test HISP" -out "$WORK/$name.csr"
    LEAF_EMAIL=$address CA_DIR="$WORK/$issuer" openssl ca -batch -notext \
        -config "$WORK/ca.cnf" -cert "pki/$issuer.pem" -keyfile "pki/$issuer.key" \
        -in "$WORK/$name.csr" -out "pki/$name.pem" \
        -startdate "$4" -enddate "$5" -extensions v3_leaf 2>/dev/null
}

root ca "/CN=hisp test root CA/O=hisp test vectors" 1000
root otherca "/CN=unrelated test root CA/O=somebody else" 5000
leaf alice@a.example ca 2048 "$NOT_BEFORE" "$NOT_AFTER"
leaf bob@b.example ca 2048 "$NOT_BEFORE" "$NOT_AFTER"
leaf carol@b.example ca 2048 "$NOT_BEFORE" "$NOT_AFTER"
leaf expired@a.example ca 2048 200101000000Z 210101000000Z
leaf untrusted@a.example otherca 2048 "$NOT_BEFORE" "$NOT_AFTER"
leaf weak@a.example ca 1024 "$NOT_BEFORE" "$NOT_AFTER"

for c in alice bob carol expired untrusted weak; do
    issuer=ca
    [ "$c" = untrusted ] && issuer=otherca
    openssl verify -attime "$ATTIME" -purpose smimesign -CAfile "pki/$issuer.pem" "pki/$c.pem" \
        >/dev/null 2>&1 || [ "$c" = expired ] ||
        { echo "pki/$c.pem does not verify" >&2; exit 1; }
done
if openssl verify -attime "$ATTIME" -CAfile pki/ca.pem pki/expired.pem >/dev/null 2>&1; then
    echo "pki/expired.pem should be expired at $ATTIME" >&2; exit 1
fi

# ---------------------------------------------------------------------------
# Inner messages (CRLF line endings throughout)
# ---------------------------------------------------------------------------

crlf() { sed 's/\r$//; s/$/\r/'; }

crlf >messages/plain.eml <<'EOF'
From: Alice Example <alice@a.example>
To: Bob Example <bob@b.example>
Subject: Referral for patient 1234
Date: Thu, 01 Jan 2026 12:00:00 +0000
Message-ID: <plain-1@a.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hello Bob,

Please see the referral notes for patient 1234 below.
The patient is expected on Monday.

-- 
Alice
EOF

crlf >messages/utf8.eml <<'EOF'
From: Alice Example <alice@a.example>
To: Bob Example <bob@b.example>
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=
Date: Thu, 01 Jan 2026 12:05:00 +0000
Message-ID: <utf8-1@a.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus München, Zoë!

Résumé of the visit: the patient's café au lait spots are unchanged ✓.
日本語のテキストも含まれています。
EOF

# A small PDF-like binary: "%PDF-1.4" and 1500 pseudo-random bytes from AES-CTR
# over zeros with a fixed key, so the attachment is the same on every run.
{
    printf '%%PDF-1.4\n%%\342\343\317\323\n'
    head -c 1500 /dev/zero | openssl enc -aes-128-ctr -nosalt \
        -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000
    printf '\n%%%%EOF\n'
} >"$WORK/report.pdf"
{
    crlf <<'EOF'
From: Alice Example <alice@a.example>
To: Bob Example <bob@b.example>
Subject: Discharge summary with attachment
Date: Thu, 01 Jan 2026 12:10:00 +0000
Message-ID: <multipart-1@a.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_hisp_vector_mixed"

This is a multi-part message in MIME format.

--=_hisp_vector_mixed
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hello Bob,

the discharge summary is attached.

--=_hisp_vector_mixed
Content-Type: application/pdf; name="summary.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="summary.pdf"

EOF
    openssl base64 -e -in "$WORK/report.pdf" | crlf
    crlf <<'EOF'
--=_hisp_vector_mixed--
EOF
} >messages/multipart.eml

# The wrapped entities (Applicability Statement 1.3 §3.3 header wrapping): the whole
# message as the body of a message/rfc822 entity.
for m in plain utf8 multipart; do
    { printf 'Content-Type: message/rfc822\r\n\r\n'; cat "messages/$m.eml"; } >"messages/$m.wrapped.eml"
done

# Unwrapped entities: only the MIME entity of the message is signed; the RFC 5322
# headers travel outside, on the encrypted message.
crlf >messages/text.entity.eml <<'EOF'
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hello Bob,

Please see the referral notes for patient 1234 below.
This message was signed without header wrapping.

-- 
Alice
EOF
# The multipart message's entity: its headers from Content-Type on, and its body.
sed -n '/^Content-Type: multipart\/mixed/,$p' messages/multipart.eml >messages/multipart.entity.eml

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# Outer RFC 5322 headers that a sending HISP puts on the encrypted message. With
# SUBJECT set, a Subject line too (unwrapped messages carry their subject outside).
outer_headers() { # ID [SUBJECT]
    printf 'From: Alice Example <alice@a.example>\r\n'
    printf 'To: Bob Example <bob@b.example>\r\n'
    [ $# -ge 2 ] && printf 'Subject: %s\r\n' "$2"
    printf 'Date: Thu, 01 Jan 2026 12:00:00 +0000\r\n'
    printf 'Message-ID: <%s@a.example>\r\n' "$1"
}

sign() { # IN OUT [openssl cms -sign options...]: detached, SHA-256 unless -md is given
    local in=$1 out=$2
    shift 2
    local md=(-md sha256)
    case " $* " in *" -md "*) md=() ;; esac
    openssl cms -sign "${md[@]}" -in "$in" -out "$out" -crlfeol "$@"
}

alice=(-signer pki/alice.pem -inkey pki/alice.key)

encrypt() { # IN OUT CIPHER [more options: -recip ... -keyopt ...]; bob when no -recip
    local in=$1 out=$2 cipher=$3
    shift 3
    local recip=(-recip pki/bob.pem)
    case " $* " in *" -recip "*) recip=() ;; esac
    openssl cms -encrypt "$cipher" -in "$in" -out "$out" -crlfeol "${recip[@]}" "$@"
}

# Puts the outer headers in front of an openssl S/MIME output and writes vector NAME.eml.
emit() { # NAME FILE ID [SUBJECT]
    local name=$1 file=$2
    shift 2
    { outer_headers "$@"; cat "$file"; } >"$name.eml"
}

# A MIME entity of DER bytes, as openssl writes them, for hand-tampered CMS.
der_to_smime() { # DER SMIME-TYPE
    printf 'MIME-Version: 1.0\r\n'
    printf 'Content-Disposition: attachment; filename="smime.p7m"\r\n'
    printf 'Content-Type: application/pkcs7-mime; smime-type=%s; name="smime.p7m"\r\n' "$2"
    printf 'Content-Transfer-Encoding: base64\r\n\r\n'
    openssl base64 -e -in "$1" | crlf
}

# Flips the lowest bit of the last byte of FILE (in place).
flip_last_byte() { # FILE
    local size last
    size=$(stat -c %s "$1")
    last=$(tail -c 1 "$1" | od -An -tu1 | tr -d ' ')
    head -c $((size - 1)) "$1" >"$1.tmp"
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' $((last ^ 1)))" >>"$1.tmp"
    mv "$1.tmp" "$1"
}

json_str() { # a JSON string literal (the inputs here hold no quotes or backslashes)
    if [ -z "$1" ]; then printf 'null'; else printf '"%s"' "$1"; fi
}

# expect_ok NAME INNER WRAPPED CIPHER KEY_TRANSPORT DIGEST ABOUT [SIGNERS] [OPEN_WITH]
expect_ok() {
    local name=$1 inner=$2 wrapped=$3 cipher=$4 kt=$5 digest=$6 about=$7
    local signers=${8:-1} open_with=${9:-bob}
    local with_json
    with_json=$(printf '"%s",' $open_with)
    {
        printf '{\n  "about": %s,\n  "ok": true,\n' "$(json_str "$about")"
        printf '  "inner": %s,\n  "wrapped": %s,\n' "$(json_str "$inner")" "$wrapped"
        printf '  "cipher": %s,\n  "key_transport": %s,\n' "$(json_str "$cipher")" "$(json_str "$kt")"
        printf '  "digest": %s,\n  "signers": %s,\n' "$(json_str "$digest")" "$signers"
        printf '  "open_with": [%s]\n}\n' "${with_json%,}"
    } >"$name.json"
}

# expect_unwrapped NAME ENTITY CIPHER KEY_TRANSPORT DIGEST ABOUT
# For messages signed without header wrapping, the message a receiver hands on is
# the outer header fields (one line each here) that the signed entity does not
# have, in their order, less MIME-Version and Content-* (they describe the
# encrypted envelope); then MIME-Version: 1.0 when the entity has none; then the
# signed entity byte for byte. A field the entity has replaces every outer copy,
# except Received, kept one by one unless the entity holds the same line.
# That exact message is written to NAME.inner.eml.
expect_unwrapped() {
    local name=$1 entity=$2 names line field
    names=$(sed -n '1,/^\r$/p' "$entity" | grep -v -e $'^\r$' -e '^[[:space:]]' |
        cut -d: -f1 | tr '[:upper:]' '[:lower:]' | sort -u)
    {
        sed -n '1,/^\r$/p' "$name.eml" | grep -v -e $'^\r$' | while IFS= read -r line; do
            field=$(printf '%s' "${line%%:*}" | tr '[:upper:]' '[:lower:]')
            case $field in content-* | mime-version) continue ;; esac
            if [ "$field" = received ]; then
                grep -qxF "$line" "$entity" && continue
            elif grep -qxF "$field" <<<"$names"; then
                continue
            fi
            printf '%s\n' "$line"
        done
        grep -qx 'mime-version' <<<"$names" || printf 'MIME-Version: 1.0\r\n'
        cat "$entity"
    } >"$name.inner.eml"
    expect_ok "$name" "$name.inner.eml" false "$3" "$4" "$5" "$6"
}

# expect_err NAME CODE ABOUT [OPEN_WITH]
expect_err() {
    local with_json
    with_json=$(printf '"%s",' ${4:-bob})
    {
        printf '{\n  "about": %s,\n  "ok": false,\n' "$(json_str "$3")"
        printf '  "code": "%s",\n  "open_with": [%s]\n}\n' "$2" "${with_json%,}"
    } >"$1.json"
}

# openssl's own reading of an "ok" vector: decrypt as RECIPIENT, verify at ATTIME
# against ca.pem (VERIFY_OPTS may add -noverify for vectors with a second signer that
# openssl would reject), and compare the signed content with EXPECTED byte for byte.
check_with_openssl() { # NAME EXPECTED [RECIPIENT] [VERIFY_OPTS...]
    local name=$1 expected=$2 recipient=${3:-bob}
    shift 2
    [ $# -gt 0 ] && shift
    local signed="$WORK/$name.check.signed"
    if grep -qi '^Content-Type: multipart/signed' "$name.eml"; then
        cp "$name.eml" "$signed"
    else
        openssl cms -decrypt -in "$name.eml" -recip "pki/$recipient.pem" \
            -inkey "pki/$recipient.key" -out "$signed"
    fi
    openssl cms -verify -in "$signed" -CAfile pki/ca.pem -attime "$ATTIME" \
        -out "$WORK/$name.check.out" "$@" 2>"$WORK/$name.check.err" ||
        { cat "$WORK/$name.check.err" >&2; echo "openssl cannot verify $name.eml" >&2; exit 1; }
    cmp -s "$WORK/$name.check.out" "$expected" ||
        { echo "openssl recovers other bytes than $expected from $name.eml" >&2; exit 1; }
}

# openssl must refuse this vector too (decrypt or verify at ATTIME against ca.pem).
check_openssl_refuses() { # NAME
    local name=$1
    if openssl cms -decrypt -in "$name.eml" -recip pki/bob.pem -inkey pki/bob.key \
            -out "$WORK/$name.refuse" 2>/dev/null &&
        openssl cms -verify -in "$WORK/$name.refuse" -CAfile pki/ca.pem -attime "$ATTIME" \
            -out /dev/null 2>/dev/null; then
        echo "openssl accepts $name.eml, which should be refused" >&2
        exit 1
    fi
}

W=messages/plain.wrapped.eml

# ---------------------------------------------------------------------------
# Vectors hisp must open
# ---------------------------------------------------------------------------

sign "$W" "$WORK/plain.signed" "${alice[@]}"

for c in aes128-cbc:-aes128 aes192-cbc:-aes192 aes256-cbc:-aes256 aes128-gcm:-aes-128-gcm aes256-gcm:-aes-256-gcm; do
    id=${c%%:*} opt=${c#*:}
    encrypt "$WORK/plain.signed" "$WORK/ok-$id.enc" "$opt"
    emit "ok-$id" "$WORK/ok-$id.enc" "ok-$id"
    expect_ok "ok-$id" messages/plain.eml true "$id" pkcs1 sha-256 \
        "plain.eml wrapped, signed by alice (cms -sign -md sha256, detached), encrypted to bob with cms -encrypt $opt (RSA PKCS#1 v1.5)"
    check_with_openssl "ok-$id" "$W"
done

encrypt "$WORK/plain.signed" "$WORK/oaep-sha1.enc" -aes256 -recip pki/bob.pem \
    -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha1
emit ok-oaep-sha1 "$WORK/oaep-sha1.enc" ok-oaep-sha1
expect_ok ok-oaep-sha1 messages/plain.eml true aes256-cbc oaep-sha1 sha-256 \
    "as ok-aes256-cbc, key transport RSAES-OAEP with SHA-1 and MGF1-SHA-1 (-keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha1)"
check_with_openssl ok-oaep-sha1 "$W"

encrypt "$WORK/plain.signed" "$WORK/oaep-sha256.enc" -aes256 -recip pki/bob.pem \
    -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256
emit ok-oaep-sha256 "$WORK/oaep-sha256.enc" ok-oaep-sha256
expect_ok ok-oaep-sha256 messages/plain.eml true aes256-cbc oaep-sha256 sha-256 \
    "as ok-aes256-cbc, key transport RSAES-OAEP with SHA-256 and MGF1-SHA-256"
check_with_openssl ok-oaep-sha256 "$W"

encrypt "$WORK/plain.signed" "$WORK/oaep-sha256-gcm.enc" -aes-256-gcm -recip pki/bob.pem \
    -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 -keyopt rsa_mgf1_md:sha256
emit ok-oaep-sha256-gcm "$WORK/oaep-sha256-gcm.enc" ok-oaep-sha256-gcm
expect_ok ok-oaep-sha256-gcm messages/plain.eml true aes256-gcm oaep-sha256 sha-256 \
    "AuthEnvelopedData AES-256-GCM with RSAES-OAEP SHA-256 key transport"
check_with_openssl ok-oaep-sha256-gcm "$W"

encrypt "$WORK/plain.signed" "$WORK/keyid.enc" -aes256 -keyid
emit ok-recipient-keyid "$WORK/keyid.enc" ok-recipient-keyid
expect_ok ok-recipient-keyid messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "as ok-aes256-cbc, but the RecipientInfo names bob by subjectKeyIdentifier (cms -encrypt -keyid)"
check_with_openssl ok-recipient-keyid "$W"

encrypt "$WORK/plain.signed" "$WORK/two.enc" -aes256 -recip pki/bob.pem -recip pki/carol.pem
emit ok-bob-and-carol "$WORK/two.enc" ok-bob-and-carol
expect_ok ok-bob-and-carol messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "encrypted to bob and carol (two RecipientInfos); each opens it with their own key alone" \
    1 "bob carol"
check_with_openssl ok-bob-and-carol "$W" bob
check_with_openssl ok-bob-and-carol "$W" carol

for d in sha384:sha-384 sha512:sha-512; do
    md=${d%%:*} name=${d#*:}
    sign "$W" "$WORK/$md.signed" "${alice[@]}" -md "$md"
    encrypt "$WORK/$md.signed" "$WORK/$md.enc" -aes256
    emit "ok-$md" "$WORK/$md.enc" "ok-$md"
    expect_ok "ok-$md" messages/plain.eml true aes256-cbc pkcs1 "$name" \
        "as ok-aes256-cbc, signed with -md $md"
    check_with_openssl "ok-$md" "$W"
done

sign "$W" "$WORK/opaque.signed" "${alice[@]}" -nodetach
encrypt "$WORK/opaque.signed" "$WORK/opaque.enc" -aes256
emit ok-opaque-signed "$WORK/opaque.enc" ok-opaque-signed
expect_ok ok-opaque-signed messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "signed opaque (cms -sign -nodetach: application/pkcs7-mime; smime-type=signed-data), then encrypted"
check_with_openssl ok-opaque-signed "$W"

sign "$W" "$WORK/keyid.signed" "${alice[@]}" -keyid
encrypt "$WORK/keyid.signed" "$WORK/signer-keyid.enc" -aes256
emit ok-signer-keyid "$WORK/signer-keyid.enc" ok-signer-keyid
expect_ok ok-signer-keyid messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "the SignerInfo names alice by subjectKeyIdentifier (cms -sign -keyid)"
check_with_openssl ok-signer-keyid "$W"

sign "$W" "$WORK/noattr.signed" "${alice[@]}" -noattr
encrypt "$WORK/noattr.signed" "$WORK/noattr.enc" -aes256
emit ok-no-signed-attributes "$WORK/noattr.enc" ok-no-signed-attributes
expect_ok ok-no-signed-attributes messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "a SignerInfo without signed attributes (cms -sign -noattr; RFC 5652 5.3 allows it for id-data content)"
check_with_openssl ok-no-signed-attributes "$W"

sign "$W" "$WORK/alice-expired.signed" "${alice[@]}" -signer pki/expired.pem -inkey pki/expired.key
encrypt "$WORK/alice-expired.signed" "$WORK/alice-expired.enc" -aes256
emit ok-two-signers-alice-expired "$WORK/alice-expired.enc" ok-two-signers-alice-expired
expect_ok ok-two-signers-alice-expired messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "two SignerInfos, alice (valid) and expired@a.example (expired): alice's signature suffices" 2
check_with_openssl ok-two-signers-alice-expired "$W" bob -noverify

sign "$W" "$WORK/alice-untrusted.signed" "${alice[@]}" -signer pki/untrusted.pem -inkey pki/untrusted.key
encrypt "$WORK/alice-untrusted.signed" "$WORK/alice-untrusted.enc" -aes256
emit ok-two-signers-alice-untrusted "$WORK/alice-untrusted.enc" ok-two-signers-alice-untrusted
expect_ok ok-two-signers-alice-untrusted messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "two SignerInfos, alice (trusted) and untrusted@a.example (issued by otherca): alice's signature suffices" 2
check_with_openssl ok-two-signers-alice-untrusted "$W" bob -noverify

# Legacy openssl smime: application/x-pkcs7-signature and application/x-pkcs7-mime.
openssl smime -sign -md sha256 -in "$W" -out "$WORK/legacy.signed" -crlfeol "${alice[@]}"
openssl smime -encrypt -aes256 -in "$WORK/legacy.signed" -out "$WORK/legacy.enc" -crlfeol pki/bob.pem
emit ok-legacy-smime "$WORK/legacy.enc" ok-legacy-smime
expect_ok ok-legacy-smime messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "openssl smime -sign -md sha256 (application/x-pkcs7-signature) then openssl smime -encrypt -aes256 (application/x-pkcs7-mime)"
check_with_openssl ok-legacy-smime "$W"

openssl smime -sign -md sha256 -nodetach -in "$W" -out "$WORK/legacy-opaque.signed" -crlfeol "${alice[@]}"
openssl smime -encrypt -aes128 -in "$WORK/legacy-opaque.signed" -out "$WORK/legacy-opaque.enc" -crlfeol pki/bob.pem
emit ok-legacy-smime-opaque "$WORK/legacy-opaque.enc" ok-legacy-smime-opaque
expect_ok ok-legacy-smime-opaque messages/plain.eml true aes128-cbc pkcs1 sha-256 \
    "openssl smime -sign -nodetach (application/x-pkcs7-mime; smime-type=signed-data) then openssl smime -encrypt -aes128"
check_with_openssl ok-legacy-smime-opaque "$W"

for m in utf8 multipart; do
    sign "messages/$m.wrapped.eml" "$WORK/$m.signed" "${alice[@]}"
    encrypt "$WORK/$m.signed" "$WORK/$m.enc" -aes256
    emit "ok-$m" "$WORK/$m.enc" "ok-$m"
    check_with_openssl "ok-$m" "messages/$m.wrapped.eml"
done
expect_ok ok-utf8 messages/utf8.eml true aes256-cbc pkcs1 sha-256 \
    "utf8.eml (8bit UTF-8 body, encoded-word Subject) wrapped, signed, encrypted"
expect_ok ok-multipart messages/multipart.eml true aes256-cbc pkcs1 sha-256 \
    "multipart.eml (text and a base64 PDF-like attachment) wrapped, signed, encrypted"

# Outer message with bare LF line endings, as a message saved on a Unix system.
emit ok-lf-line-endings "$WORK/ok-aes256-cbc.enc" ok-lf-line-endings
sed -i 's/\r$//' ok-lf-line-endings.eml
expect_ok ok-lf-line-endings messages/plain.eml true aes256-cbc pkcs1 sha-256 \
    "ok-aes256-cbc's ciphertext with the outer MIME written with LF line endings instead of CRLF"

# Signed only, not encrypted.
emit ok-signed-only "$WORK/plain.signed" ok-signed-only
expect_ok ok-signed-only messages/plain.eml true "" "" sha-256 \
    "plain.eml wrapped and signed (multipart/signed), not encrypted"
check_with_openssl ok-signed-only "$W"

# Without header wrapping: the signed content is the MIME entity alone.
for m in text multipart; do
    sign "messages/$m.entity.eml" "$WORK/unwrapped-$m.signed" "${alice[@]}"
    encrypt "$WORK/unwrapped-$m.signed" "$WORK/unwrapped-$m.enc" -aes256
    emit "ok-unwrapped-$m" "$WORK/unwrapped-$m.enc" "ok-unwrapped-$m" "Referral for patient 1234"
    check_with_openssl "ok-unwrapped-$m" "messages/$m.entity.eml"
    expect_unwrapped "ok-unwrapped-$m" "messages/$m.entity.eml" aes256-cbc pkcs1 sha-256 \
        "messages/$m.entity.eml signed as is (no message/rfc822 wrapper), encrypted; From, To, Subject, Date and Message-ID are outer headers"
done

# Without header wrapping, the whole message signed, as `openssl cms -sign` of a
# message makes it: the entity carries its own From, To, Subject, Date, Message-ID
# and MIME-Version, and the sender copies them outside (the Subject with another
# text, the Message-ID another id) below a trace field added on the way.
sign messages/plain.eml "$WORK/unwrapped-whole.signed" "${alice[@]}"
encrypt "$WORK/unwrapped-whole.signed" "$WORK/unwrapped-whole.enc" -aes256
{
    printf 'Received: from hisp.a.example by hisp.b.example; Thu, 01 Jan 2026 12:00:05 +0000\r\n'
    outer_headers ok-unwrapped-whole-message "Outer copy of the subject, not signed"
    cat "$WORK/unwrapped-whole.enc"
} >ok-unwrapped-whole-message.eml
check_with_openssl ok-unwrapped-whole-message messages/plain.eml
expect_unwrapped ok-unwrapped-whole-message messages/plain.eml aes256-cbc pkcs1 sha-256 \
    "messages/plain.eml signed whole (its own RFC 5322 fields, no message/rfc822 wrapper), encrypted; the outer From, To, Subject (another text), Date and Message-ID (another id) are replaced by the signed ones, the outer Received stays"

# ---------------------------------------------------------------------------
# Vectors hisp must refuse
# ---------------------------------------------------------------------------

cp messages/plain.eml refuse-not-smime.eml
expect_err refuse-not-smime not-smime "plain.eml as is: neither encrypted nor signed"

encrypt "$W" "$WORK/unsigned.enc" -aes256
emit refuse-unsigned "$WORK/unsigned.enc" refuse-unsigned
expect_err refuse-unsigned unsigned "plain.eml wrapped and encrypted to bob, never signed"

encrypt "$WORK/plain.signed" "$WORK/carol.enc" -aes256 -recip pki/carol.pem
emit refuse-not-a-recipient "$WORK/carol.enc" refuse-not-a-recipient
expect_err refuse-not-a-recipient not-a-recipient "signed by alice, encrypted to carol only; opened with bob's key"
check_openssl_refuses refuse-not-a-recipient

encrypt "$WORK/plain.signed" "$WORK/des3.enc" -des3
emit refuse-3des "$WORK/des3.enc" refuse-3des
expect_err refuse-3des unsupported-algorithm "as ok-aes256-cbc but encrypted with -des3 (des-ede3-cbc)"

sign "$W" "$WORK/sha1.signed" "${alice[@]}" -md sha1
encrypt "$WORK/sha1.signed" "$WORK/sha1.enc" -aes256
emit refuse-sha1-signature "$WORK/sha1.enc" refuse-sha1-signature
expect_err refuse-sha1-signature unsupported-algorithm "as ok-aes256-cbc but signed with -md sha1"

sign "$W" "$WORK/md5.signed" "${alice[@]}" -md md5
encrypt "$WORK/md5.signed" "$WORK/md5.enc" -aes256
emit refuse-md5-signature "$WORK/md5.enc" refuse-md5-signature
expect_err refuse-md5-signature unsupported-algorithm "as ok-aes256-cbc but signed with -md md5"

sign "$W" "$WORK/weak.signed" -signer pki/weak.pem -inkey pki/weak.key
encrypt "$WORK/weak.signed" "$WORK/weak.enc" -aes256
emit refuse-weak-signer "$WORK/weak.enc" refuse-weak-signer
expect_err refuse-weak-signer weak-key "signed by weak@a.example, whose certificate (issued by ca) has an RSA-1024 key"

sign "$W" "$WORK/untrusted.signed" -signer pki/untrusted.pem -inkey pki/untrusted.key
encrypt "$WORK/untrusted.signed" "$WORK/untrusted.enc" -aes256
emit refuse-untrusted-signer "$WORK/untrusted.enc" refuse-untrusted-signer
expect_err refuse-untrusted-signer untrusted-signer "signed only by untrusted@a.example, issued by otherca, which is not an anchor"
check_openssl_refuses refuse-untrusted-signer

sign "$W" "$WORK/expired.signed" -signer pki/expired.pem -inkey pki/expired.key
encrypt "$WORK/expired.signed" "$WORK/expired.enc" -aes256
emit refuse-expired-signer "$WORK/expired.enc" refuse-expired-signer
expect_err refuse-expired-signer expired-signer "signed only by expired@a.example (valid 2020-01-01 to 2021-01-01)"
check_openssl_refuses refuse-expired-signer

sign "$W" "$WORK/nocerts.signed" "${alice[@]}" -nocerts
encrypt "$WORK/nocerts.signed" "$WORK/nocerts.enc" -aes256
emit refuse-signer-certificate-missing "$WORK/nocerts.enc" refuse-signer-certificate-missing
expect_err refuse-signer-certificate-missing signer-certificate-missing \
    "signed by alice with cms -sign -nocerts: the SignedData carries no certificate"

# Tampered: the signed content changed after signing ("Please see" -> "Please SEE"),
# then encrypted. Only the first part of the multipart/signed holds those words.
sed 's/^Please see the referral/Please SEE the referral/' "$WORK/plain.signed" >"$WORK/tampered.signed"
cmp -s "$WORK/plain.signed" "$WORK/tampered.signed" && { echo "tampering changed nothing" >&2; exit 1; }
encrypt "$WORK/tampered.signed" "$WORK/tampered.enc" -aes256
emit refuse-tampered-content "$WORK/tampered.enc" refuse-tampered-content
expect_err refuse-tampered-content digest-mismatch \
    "signed by alice, then 'Please see' changed to 'Please SEE' in the signed part, then encrypted"
check_openssl_refuses refuse-tampered-content

# Bad signature: the last byte of the detached SignedData is the last byte of the
# signature value (no unsigned attributes); flip it and rebuild multipart/signed by
# hand. The untampered rebuild is checked with openssl first.
sign "$W" "$WORK/sig.der" "${alice[@]}" -outform DER
multipart_signed() { # CONTENT SIGNATURE_DER
    local b=----HISPVECTORSIGNED
    printf 'MIME-Version: 1.0\r\n'
    printf 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg="sha-256"; boundary="%s"\r\n\r\n' "$b"
    printf 'This is an S/MIME signed message\r\n\r\n'
    printf -- '--%s\r\n' "$b"
    cat "$1"
    printf '\r\n--%s\r\n' "$b"
    printf 'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
    printf 'Content-Transfer-Encoding: base64\r\n'
    printf 'Content-Disposition: attachment; filename="smime.p7s"\r\n\r\n'
    openssl base64 -e -in "$2" | crlf
    printf '\r\n--%s--\r\n' "$b"
}
multipart_signed "$W" "$WORK/sig.der" >"$WORK/handmade.signed"
openssl cms -verify -in "$WORK/handmade.signed" -CAfile pki/ca.pem -attime "$ATTIME" -out /dev/null 2>/dev/null ||
    { echo "the hand-made multipart/signed does not verify" >&2; exit 1; }
flip_last_byte "$WORK/sig.der"
multipart_signed "$W" "$WORK/sig.der" >"$WORK/badsig.signed"
encrypt "$WORK/badsig.signed" "$WORK/badsig.enc" -aes256
emit refuse-bad-signature "$WORK/badsig.enc" refuse-bad-signature
expect_err refuse-bad-signature bad-signature \
    "signed by alice; the last byte of the RSA signature value flipped; encrypted"
check_openssl_refuses refuse-bad-signature

# AES-GCM with a wrong authentication tag: the DER of ok-aes256-gcm ends with the
# 16-byte mac OCTET STRING; flip its last byte.
openssl cms -cmsout -inform SMIME -in ok-aes256-gcm.eml -outform DER -out "$WORK/gcm.der"
flip_last_byte "$WORK/gcm.der"
der_to_smime "$WORK/gcm.der" authEnveloped-data >"$WORK/gcm-tampered.enc"
emit refuse-gcm-bad-tag "$WORK/gcm-tampered.enc" refuse-gcm-bad-tag
expect_err refuse-gcm-bad-tag bad-ciphertext \
    "ok-aes256-gcm with the last byte of the GCM authentication tag flipped"
check_openssl_refuses refuse-gcm-bad-tag

# Truncated: the first half of ok-aes256-cbc's base64 lines, then 61 characters of the
# next line, so the base64 length is 1 modulo 4 and cannot decode.
cut_base64() { # IN KEEP_EXTRA_CHARS
    local lines body_start keep
    body_start=$(grep -n $'^\r$' "$1" | head -1 | cut -d: -f1)
    lines=$(wc -l <"$1")
    keep=$(( body_start + (lines - body_start) / 2 ))
    head -n "$keep" "$1"
    if [ "$2" -gt 0 ]; then
        sed -n "$((keep + 1))p" "$1" | head -c "$2"
        printf '\r\n'
    fi
}
cut_base64 ok-aes256-cbc.eml 61 >refuse-truncated-base64.eml
expect_err refuse-truncated-base64 bad-base64 \
    "ok-aes256-cbc cut in the middle of a base64 line: the base64 text is 1 modulo 4 characters long"
cut_base64 ok-aes256-cbc.eml 0 >refuse-truncated-der.eml
expect_err refuse-truncated-der malformed-cms \
    "ok-aes256-cbc cut after half of its base64 lines: valid base64 of a truncated EnvelopedData"
for t in refuse-truncated-base64 refuse-truncated-der; do
    check_openssl_refuses "$t"
done

# A multipart/signed whose signature part is not CMS at all.
{
    printf 'MIME-Version: 1.0\r\n'
    printf 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg="sha-256"; boundary="XX"\r\n\r\n'
    printf -- '--XX\r\n'
    cat "$W"
    printf '\r\n--XX\r\n'
    printf 'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
    printf 'Content-Transfer-Encoding: base64\r\n\r\n'
    printf 'aGVsbG8sIHRoaXMgaXMgbm90IGEgQ01TIHN0cnVjdHVyZQ==\r\n'
    printf '\r\n--XX--\r\n'
} >"$WORK/notcms.signed"
encrypt "$WORK/notcms.signed" "$WORK/notcms.enc" -aes256
emit refuse-signature-not-cms "$WORK/notcms.enc" refuse-signature-not-cms
expect_err refuse-signature-not-cms malformed-cms \
    "encrypted multipart/signed whose application/pkcs7-signature part is base64 of plain text"

# A multipart/signed without its closing boundary (one part only), encrypted.
awk '/^------/ { n++ } n < 2 { print }' "$WORK/plain.signed" >"$WORK/broken.signed"
encrypt "$WORK/broken.signed" "$WORK/broken.enc" -aes256
emit refuse-multipart-signed-one-part "$WORK/broken.enc" refuse-multipart-signed-one-part
expect_err refuse-multipart-signed-one-part malformed-mime \
    "encrypted multipart/signed cut after its first part: no signature part, no closing boundary"

total=$(du -sk . | cut -f1)
echo "made $(ls ./*.json | wc -l) vectors in $HERE (${total} KiB)"
