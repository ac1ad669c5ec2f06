//! The few libcrypto CMS calls the `openssl` crate does not wrap, and memory
//! BIOs to feed them.
//!
//! The safe `CmsContentInfo::sign` cannot choose the digest, add our own
//! SMIMECapabilities, or set RSA-OAEP on a recipient, and the safe verify
//! cannot judge each signer on its own; these declarations (OpenSSL 3.0, cms.h
//! and rsa.h) fill that gap. Every `unsafe` use lives in this module's callers
//! `sign`, `encrypt`, `decrypt` and `verify`, next to the reason it holds.

#![allow(non_camel_case_types)]

use std::ptr;

use libc::{c_int, c_uint, c_void};
use openssl_sys::{
    CMS_ContentInfo, ASN1_INTEGER, ASN1_OCTET_STRING, BIO, EVP_MD, EVP_PKEY, EVP_PKEY_CTX, X509,
    X509_ALGOR, X509_NAME,
};

/// Opaque CMS_SignerInfo.
pub(crate) enum CMS_SignerInfo {}
/// Opaque CMS_RecipientInfo.
pub(crate) enum CMS_RecipientInfo {}
/// buffer.h's BUF_MEM (a public struct).
#[repr(C)]
pub(crate) struct BUF_MEM {
    length: usize,
    data: *mut libc::c_char,
    max: usize,
    flags: libc::c_ulong,
}
/// Opaque OPENSSL_STACK as used by the sk_* functions.
pub(crate) type Stack = openssl_sys::OPENSSL_STACK;

pub(crate) const CMS_DETACHED: c_uint = 0x40;
pub(crate) const CMS_BINARY: c_uint = 0x80;
pub(crate) const CMS_NOSMIMECAP: c_uint = 0x200;
pub(crate) const CMS_PARTIAL: c_uint = 0x4000;
pub(crate) const CMS_KEY_PARAM: c_uint = 0x40000;
pub(crate) const RSA_PKCS1_OAEP_PADDING: c_int = 4;
pub(crate) const BIO_TYPE_CIPHER: c_int = 10 | 0x0200;
pub(crate) const BIO_C_GET_CIPHER_STATUS: c_int = 113;

extern "C" {
    pub(crate) fn CMS_add1_signer(
        cms: *mut CMS_ContentInfo,
        signer: *mut X509,
        pk: *mut EVP_PKEY,
        md: *const EVP_MD,
        flags: c_uint,
    ) -> *mut CMS_SignerInfo;
    pub(crate) fn CMS_dataFinal(cms: *mut CMS_ContentInfo, bio: *mut BIO) -> c_int;
    fn BUF_MEM_new() -> *mut BUF_MEM;
    fn BUF_MEM_grow(str: *mut BUF_MEM, len: usize) -> usize;
    fn BUF_MEM_free(a: *mut BUF_MEM);
    pub(crate) fn CMS_add1_cert(cms: *mut CMS_ContentInfo, cert: *mut X509) -> c_int;
    pub(crate) fn CMS_add_smimecap(si: *mut CMS_SignerInfo, algs: *mut Stack) -> c_int;
    pub(crate) fn CMS_add_simple_smimecap(
        algs: *mut *mut Stack,
        algnid: c_int,
        keysize: c_int,
    ) -> c_int;
    pub(crate) fn CMS_add1_recipient_cert(
        cms: *mut CMS_ContentInfo,
        recip: *mut X509,
        flags: c_uint,
    ) -> *mut CMS_RecipientInfo;
    pub(crate) fn CMS_RecipientInfo_get0_pkey_ctx(ri: *mut CMS_RecipientInfo) -> *mut EVP_PKEY_CTX;
    pub(crate) fn EVP_PKEY_CTX_set_rsa_oaep_md(ctx: *mut EVP_PKEY_CTX, md: *const EVP_MD) -> c_int;
    pub(crate) fn CMS_get0_SignerInfos(cms: *mut CMS_ContentInfo) -> *mut Stack;
    pub(crate) fn CMS_set1_signers_certs(
        cms: *mut CMS_ContentInfo,
        certs: *mut Stack,
        flags: c_uint,
    ) -> c_int;
    pub(crate) fn CMS_SignerInfo_get0_algs(
        si: *mut CMS_SignerInfo,
        pk: *mut *mut EVP_PKEY,
        signer: *mut *mut X509,
        pdig: *mut *mut X509_ALGOR,
        psig: *mut *mut X509_ALGOR,
    );
    pub(crate) fn CMS_SignerInfo_get0_signer_id(
        si: *mut CMS_SignerInfo,
        keyid: *mut *mut ASN1_OCTET_STRING,
        issuer: *mut *mut X509_NAME,
        sno: *mut *mut ASN1_INTEGER,
    ) -> c_int;
    pub(crate) fn CMS_SignerInfo_verify(si: *mut CMS_SignerInfo) -> c_int;
    pub(crate) fn CMS_signed_get_attr_count(si: *const CMS_SignerInfo) -> c_int;
    pub(crate) fn CMS_signed_get0_data_by_OBJ(
        si: *const CMS_SignerInfo,
        oid: *const openssl_sys::ASN1_OBJECT,
        lastpos: c_int,
        type_: c_int,
    ) -> *mut c_void;
    pub(crate) fn CMS_SignerInfo_verify_content(si: *mut CMS_SignerInfo, chain: *mut BIO) -> c_int;
    pub(crate) fn CMS_get0_type(cms: *const CMS_ContentInfo) -> *const openssl_sys::ASN1_OBJECT;
    pub(crate) fn CMS_get0_eContentType(
        cms: *mut CMS_ContentInfo,
    ) -> *const openssl_sys::ASN1_OBJECT;
    pub(crate) fn CMS_dataInit(cms: *mut CMS_ContentInfo, icont: *mut BIO) -> *mut BIO;
    pub(crate) fn CMS_get1_certs(cms: *mut CMS_ContentInfo) -> *mut Stack;
    pub(crate) fn BIO_pop(b: *mut BIO) -> *mut BIO;
    pub(crate) fn BIO_method_type(b: *const BIO) -> c_int;
    pub(crate) fn CMS_decrypt_set1_pkey(
        cms: *mut CMS_ContentInfo,
        pk: *mut EVP_PKEY,
        cert: *mut X509,
    ) -> c_int;
    pub(crate) fn BIO_free(b: *mut BIO) -> c_int;
}

/// A read-only memory BIO over a borrowed slice.
pub(crate) struct MemIn<'a> {
    bio: *mut BIO,
    _data: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> MemIn<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Result<Self, openssl::error::ErrorStack> {
        openssl_sys::init();
        let len = c_int::try_from(data.len()).map_err(|_| openssl::error::ErrorStack::get())?;
        // SAFETY: the BIO reads `data` only while `self` lives, and `self`
        // borrows `data` for 'a.
        let bio = unsafe { openssl_sys::BIO_new_mem_buf(data.as_ptr() as *const c_void, len) };
        if bio.is_null() {
            return Err(openssl::error::ErrorStack::get());
        }
        Ok(MemIn {
            bio,
            _data: std::marker::PhantomData,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut BIO {
        self.bio
    }
}

impl Drop for MemIn<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the BIO.
        unsafe { openssl_sys::BIO_free_all(self.bio) }
    }
}

/// What `CMS_final` does, without its copy loop: `CMS_final` feeds the
/// content through the digest or cipher BIOs 1 KiB at a time
/// (SMIME_crlf_copy); one large write is markedly faster on big messages.
///
/// # Safety
/// `cms` must be a valid, partial ContentInfo ready for its content.
pub(crate) unsafe fn finish_with_content(
    cms: *mut CMS_ContentInfo,
    content: &[&[u8]],
    output_hint: Option<usize>,
) -> Result<(), ()> {
    // For an envelope, the ciphertext is collected in a memory BIO; one
    // sized in advance is never regrown (each regrowth copies and wipes).
    let sink = match output_hint {
        Some(len) => presized_mem_bio(len),
        None => ptr::null_mut(),
    };
    let chain = CMS_dataInit(cms, sink);
    if chain.is_null() {
        if !sink.is_null() {
            openssl_sys::BIO_free_all(sink);
        }
        return Err(());
    }
    let mut ok = true;
    for piece in content.iter().flat_map(|c| c.chunks(1 << 30)) {
        let mut written = 0;
        while ok && written < piece.len() {
            let n = openssl_sys::BIO_write(
                chain,
                piece[written..].as_ptr() as *const c_void,
                (piece.len() - written) as c_int,
            );
            if n <= 0 {
                ok = false;
            } else {
                written += n as usize;
            }
        }
    }
    // BIO_flush: pushes the cipher's last block (and padding) out.
    ok = ok && openssl_sys::BIO_ctrl(chain, 11 /* BIO_CTRL_FLUSH */, 0, ptr::null_mut()) > 0;
    ok = ok && CMS_dataFinal(cms, chain) == 1;
    openssl_sys::BIO_free_all(chain);
    if ok {
        Ok(())
    } else {
        Err(())
    }
}

/// A memory BIO whose buffer already holds `capacity` bytes of room.
unsafe fn presized_mem_bio(capacity: usize) -> *mut BIO {
    let buf = BUF_MEM_new();
    if buf.is_null() {
        return ptr::null_mut();
    }
    if BUF_MEM_grow(buf, capacity) == 0 {
        BUF_MEM_free(buf);
        return ptr::null_mut();
    }
    (*buf).length = 0;
    let bio = openssl_sys::BIO_new(openssl_sys::BIO_s_mem());
    if bio.is_null() {
        BUF_MEM_free(buf);
        return ptr::null_mut();
    }
    // BIO_set_mem_buf(bio, buf, BIO_CLOSE): the BIO owns the buffer now.
    openssl_sys::BIO_ctrl(bio, 114 /* BIO_C_SET_BUF_MEM */, 1, buf as *mut c_void);
    bio
}

/// Reads a BIO chain to its end.
///
/// # Safety
/// `bio` must be a valid BIO.
pub(crate) unsafe fn read_to_end(bio: *mut BIO, out: &mut Vec<u8>) -> Result<(), ()> {
    loop {
        if out.capacity() - out.len() < 4096 {
            // Callers size the vector for the expected content; past that,
            // grow in modest steps rather than doubling a large buffer.
            out.reserve_exact(64 * 1024);
        }
        let spare = (out.capacity() - out.len()).min(c_int::MAX as usize);
        // Reads straight into the vector's spare capacity: no scratch copy.
        let n = openssl_sys::BIO_read(
            bio,
            out.as_mut_ptr().add(out.len()) as *mut c_void,
            spare as c_int,
        );
        if n > 0 {
            out.set_len(out.len() + n as usize);
        } else if n == 0
            || openssl_sys::BIO_ctrl(bio, 2 /* BIO_CTRL_EOF */, 0, ptr::null_mut()) != 0
        {
            return Ok(());
        } else {
            return Err(());
        }
    }
}

/// Reads a BIO chain to its end, discarding what it reads (the digest BIOs
/// in the chain see every byte).
///
/// # Safety
/// `bio` must be a valid BIO.
pub(crate) unsafe fn drain(bio: *mut BIO) -> Result<(), ()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = openssl_sys::BIO_read(bio, buf.as_mut_ptr() as *mut c_void, buf.len() as c_int);
        if n > 0 {
            continue;
        }
        if n == 0 || openssl_sys::BIO_ctrl(bio, 2 /* BIO_CTRL_EOF */, 0, ptr::null_mut()) != 0 {
            return Ok(());
        }
        return Err(());
    }
}

/// Number of entries of a stack.
///
/// # Safety
/// `sk` must be null or a valid stack.
pub(crate) unsafe fn sk_num(sk: *mut Stack) -> usize {
    if sk.is_null() {
        return 0;
    }
    openssl_sys::OPENSSL_sk_num(sk).max(0) as usize
}

/// Entry `i` of a stack.
///
/// # Safety
/// `sk` must be a valid stack with more than `i` entries.
pub(crate) unsafe fn sk_value<T>(sk: *mut Stack, i: usize) -> *mut T {
    openssl_sys::OPENSSL_sk_value(sk, i as c_int) as *mut T
}

/// Frees a STACK_OF(X509_ALGOR) and its entries.
///
/// # Safety
/// `sk` must be null or a stack of X509_ALGOR owned by the caller.
pub(crate) unsafe fn free_algor_stack(sk: *mut Stack) {
    if sk.is_null() {
        return;
    }
    unsafe extern "C" fn free_algor(p: *mut c_void) {
        openssl_sys::X509_ALGOR_free(p as *mut X509_ALGOR)
    }
    openssl_sys::OPENSSL_sk_pop_free(sk, Some(free_algor));
}
