//! Portal accounts: one per local address, argon2 like submission accounts,
//! every change and login attempt audited.

use time::OffsetDateTime;

use super::{addr, domain, Accounts, Backend};
use crate::audit::AuditFilter;
use crate::error::Entity;
use crate::portal_user::{EmailAddress, NotifySettings};
use crate::{AuditKind, Store, StoreError};

const PASSWORD: &str = "correct horse battery staple";

fn with_bob<B: Backend>(db: &B) -> B::Handle {
    let store = db.open();
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_address(&addr("Bob@b.example"), &[]).unwrap();
    store
}

fn email(text: &str) -> Option<EmailAddress> {
    Some(EmailAddress::parse(text).unwrap())
}

/// The kinds and details of the audit events naming `address`.
fn audit_of(store: &dyn Store, address: &str) -> Vec<(AuditKind, String)> {
    store
        .audit_export(&AuditFilter {
            address: Some(addr(address)),
            ..AuditFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.detail))
        .collect()
}

pub(crate) fn a_portal_account_belongs_to_an_existing_local_address<B: Backend>(db: &B) {
    let store = with_bob(db);
    let err = store
        .add_portal_user(
            &addr("carol@b.example"),
            PASSWORD,
            &NotifySettings::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::NotFound {
                entity: Entity::Address,
                name
            } if name == "carol@b.example"
        ),
        "{err:?}"
    );
    assert!(store.portal_users().unwrap().is_empty());

    let settings = NotifySettings {
        notify: true,
        email: email("bob@mail.example"),
    };
    let user = store
        .add_portal_user(&addr("bob@B.EXAMPLE"), PASSWORD, &settings)
        .unwrap();
    assert_eq!(user.address.to_string(), "Bob@b.example", "stored spelling");
    assert_eq!(user.settings, settings);
    assert!(user.is_enabled());
    match store.add_portal_user(&addr("BOB@b.example"), PASSWORD, &settings) {
        Err(StoreError::Duplicate {
            entity: Entity::PortalUser,
            name,
        }) => assert_eq!(name, "BOB@b.example"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.portal_users().unwrap(), std::slice::from_ref(&user));
    assert_eq!(store.portal_user(&addr("bob@b.example")).unwrap(), user);
    assert_eq!(
        audit_of(&store, "bob@b.example"),
        [(
            AuditKind::PortalUserAdded,
            "portal user Bob@b.example added: notify on, e-mail bob@mail.example".to_string()
        )]
    );
}

pub(crate) fn portal_passwords_are_stored_as_argon2id_hashes_only<B: Backend>(db: &B) {
    let store = with_bob(db);
    store
        .add_portal_user(&addr("bob@b.example"), PASSWORD, &NotifySettings::default())
        .unwrap();
    let hashes = db.password_hashes(Accounts::Portal);
    assert_eq!(hashes.len(), 1);
    let hash = &hashes[0];
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    assert!(store
        .add_portal_user(&addr("bob@b.example"), "short", &NotifySettings::default())
        .is_err());
}

pub(crate) fn a_portal_login_needs_the_right_password_of_an_enabled_account_and_is_audited<
    B: Backend,
>(
    db: &B,
) {
    let store = with_bob(db);
    let bob = addr("bob@b.example");
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    store
        .add_portal_user(&bob, PASSWORD, &NotifySettings::default())
        .unwrap();
    assert_eq!(
        store
            .verify_portal_login(&addr("BOB@b.example"), PASSWORD)
            .unwrap()
            .address,
        bob
    );
    assert!(store
        .verify_portal_login(&bob, "correct horse battery stapler")
        .unwrap_err()
        .is_bad_credentials());
    assert!(store
        .verify_portal_login(&addr("nobody@b.example"), PASSWORD)
        .unwrap_err()
        .is_bad_credentials());
    assert_eq!(store.failed_portal_logins(&bob, before).unwrap(), 1);

    store.disable_portal_user(&bob).unwrap();
    let again = store.disable_portal_user(&bob).unwrap();
    assert!(!again.is_enabled());
    match store.verify_portal_login(&bob, PASSWORD) {
        Err(StoreError::Disabled {
            entity: Entity::PortalUser,
            name,
        }) => assert_eq!(name, "bob@b.example"),
        other => panic!("{other:?}"),
    }
    assert!(
        store
            .verify_portal_login(&bob, "a wrong password")
            .unwrap_err()
            .is_bad_credentials(),
        "a disabled account is not revealed to a wrong password"
    );
    assert_eq!(store.failed_portal_logins(&bob, before).unwrap(), 3);
    assert_eq!(
        store
            .failed_portal_logins(
                &bob,
                OffsetDateTime::now_utc() + time::Duration::minutes(15)
            )
            .unwrap(),
        0
    );
    let kinds: Vec<AuditKind> = audit_of(&store, "bob@b.example")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        kinds,
        [
            AuditKind::PortalUserAdded,
            AuditKind::Login,
            AuditKind::LoginFailed,
            AuditKind::PortalUserDisabled,
            AuditKind::LoginFailed,
            AuditKind::LoginFailed,
        ]
    );
    let details: Vec<String> = audit_of(&store, "bob@b.example")
        .into_iter()
        .filter(|(k, _)| *k == AuditKind::LoginFailed)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        details,
        [
            "portal login as bob@b.example refused: wrong password",
            "portal login as bob@b.example refused: account disabled",
            "portal login as bob@b.example refused: wrong password",
        ]
    );
    assert_eq!(
        audit_of(&store, "nobody@b.example"),
        [(
            AuditKind::LoginFailed,
            "portal login as nobody@b.example refused: no such portal user".to_string()
        )]
    );
}

pub(crate) fn a_new_portal_password_replaces_the_old_one<B: Backend>(db: &B) {
    let store = with_bob(db);
    let bob = addr("bob@b.example");
    store
        .add_portal_user(&bob, PASSWORD, &NotifySettings::default())
        .unwrap();
    store
        .set_portal_password(&bob, "another long password")
        .unwrap();
    assert!(store
        .verify_portal_login(&bob, PASSWORD)
        .unwrap_err()
        .is_bad_credentials());
    store
        .verify_portal_login(&bob, "another long password")
        .unwrap();
    assert!(store
        .set_portal_password(&addr("carol@b.example"), "another long password")
        .unwrap_err()
        .is_not_found());
}

pub(crate) fn notify_settings_read_back_and_each_change_is_audited_once<B: Backend>(db: &B) {
    let store = with_bob(db);
    let bob = addr("bob@b.example");
    let user = store
        .add_portal_user(
            &bob,
            PASSWORD,
            &NotifySettings {
                notify: false,
                email: None,
            },
        )
        .unwrap();
    assert_eq!(user.settings.notify_to(), None);
    let on = NotifySettings {
        notify: true,
        email: email("bob@mail.example"),
    };
    assert_eq!(store.set_portal_settings(&bob, &on).unwrap().settings, on);
    assert_eq!(store.set_portal_settings(&bob, &on).unwrap().settings, on);
    assert_eq!(
        store.portal_user(&bob).unwrap().settings.notify_to(),
        email("bob@mail.example").as_ref()
    );
    let changes: Vec<String> = audit_of(&store, "bob@b.example")
        .into_iter()
        .filter(|(k, _)| *k == AuditKind::PortalSettingsChanged)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        changes,
        ["portal user Bob@b.example: notify on, e-mail bob@mail.example"]
    );
}

pub(crate) fn removing_an_address_removes_its_portal_account<B: Backend>(db: &B) {
    let store = with_bob(db);
    let bob = addr("bob@b.example");
    store
        .add_portal_user(&bob, PASSWORD, &NotifySettings::default())
        .unwrap();
    store.remove_address(&bob).unwrap();
    assert!(store.portal_users().unwrap().is_empty());
    assert!(store
        .verify_portal_login(&bob, PASSWORD)
        .unwrap_err()
        .is_bad_credentials());
}
