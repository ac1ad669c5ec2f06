//! Submission accounts: passwords and sender grants.

use super::{addr, domain, Accounts, Backend};
use crate::error::Entity;
use crate::{Grant, Store, StoreError, UserName};

fn user(name: &str) -> UserName {
    UserName::parse(name).unwrap()
}

const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn a_new_account_verifies_its_password_and_requests_final_delivery<B: Backend>(db: &B) {
    let store = db.open();
    let added = store.add_user(&user("portal"), PASSWORD).unwrap();
    assert!(added.request_final_delivery);
    assert!(added.grants.is_empty());
    let account = store.verify_password(&user("portal"), PASSWORD).unwrap();
    assert_eq!(account, added);
}

pub(crate) fn the_stored_hash_is_argon2id_and_never_the_password<B: Backend>(db: &B) {
    let store = db.open();
    store.add_user(&user("portal"), PASSWORD).unwrap();
    let hashes = db.password_hashes(Accounts::Submission);
    assert_eq!(hashes.len(), 1);
    let hash = &hashes[0];
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

pub(crate) fn a_wrong_password_and_an_unknown_user_fail_alike<B: Backend>(db: &B) {
    let store = db.open();
    store.add_user(&user("portal"), PASSWORD).unwrap();
    let wrong = store
        .verify_password(&user("portal"), "correct horse battery stapler")
        .unwrap_err();
    let unknown = store
        .verify_password(&user("nobody"), PASSWORD)
        .unwrap_err();
    assert!(wrong.is_bad_credentials() && unknown.is_bad_credentials());
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert_eq!(
        wrong.to_string(),
        "authentication failed: wrong user name or password"
    );
}

pub(crate) fn a_user_name_is_added_once_and_short_passwords_are_refused<B: Backend>(db: &B) {
    let store = db.open();
    store.add_user(&user("portal"), PASSWORD).unwrap();
    let err = store.add_user(&user("portal"), PASSWORD).unwrap_err();
    assert_eq!(err.to_string(), "user portal already exists");
    let err = store.add_user(&user("ehr"), "short").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid password '(not shown)': it must be at least 12 characters long"
    );
    assert_eq!(store.users().unwrap().len(), 1);
}

pub(crate) fn grants_name_local_addresses_or_whole_local_domains<B: Backend>(db: &B) {
    let store = db.open();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    store.add_domain(&domain("b.example"), &[]).unwrap();
    store.add_address(&addr("Alice@a.example"), &[]).unwrap();
    store.add_user(&user("portal"), PASSWORD).unwrap();
    store
        .grant(&user("portal"), &Grant::parse("alice@a.example").unwrap())
        .unwrap();
    let account = store
        .grant(&user("portal"), &Grant::parse("@b.example").unwrap())
        .unwrap();
    let shown: Vec<String> = account.grants.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["Alice@a.example", "@b.example"]);
    assert!(account.may_send_as(&addr("ALICE@a.example")));
    assert!(account.may_send_as(&addr("anyone@b.example")));
    assert!(!account.may_send_as(&addr("bob@a.example")));

    let dup = store
        .grant(&user("portal"), &Grant::parse("@b.example").unwrap())
        .unwrap_err();
    assert!(dup.is_duplicate(), "{dup}");
    match store.grant(&user("portal"), &Grant::parse("bob@a.example").unwrap()) {
        Err(StoreError::NotFound {
            entity: Entity::Address,
            name,
        }) => assert_eq!(name, "bob@a.example"),
        other => panic!("{other:?}"),
    }
    match store.grant(&user("portal"), &Grant::parse("@c.example").unwrap()) {
        Err(StoreError::NotFound {
            entity: Entity::Domain,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

pub(crate) fn removing_an_address_takes_its_grants_with_it<B: Backend>(db: &B) {
    let store = db.open();
    store.add_domain(&domain("a.example"), &[]).unwrap();
    store.add_address(&addr("alice@a.example"), &[]).unwrap();
    store.add_user(&user("portal"), PASSWORD).unwrap();
    store
        .grant(&user("portal"), &Grant::parse("alice@a.example").unwrap())
        .unwrap();
    store.remove_address(&addr("alice@a.example")).unwrap();
    assert!(store.user(&user("portal")).unwrap().grants.is_empty());
}

pub(crate) fn final_delivery_can_be_turned_off_per_account<B: Backend>(db: &B) {
    let store = db.open();
    store.add_user(&user("ehr"), PASSWORD).unwrap();
    store.add_user(&user("portal"), PASSWORD).unwrap();
    store
        .set_request_final_delivery(&user("ehr"), false)
        .unwrap();
    let flags: Vec<(String, bool)> = store
        .users()
        .unwrap()
        .into_iter()
        .map(|a| (a.name.to_string(), a.request_final_delivery))
        .collect();
    assert_eq!(
        flags,
        [("ehr".to_string(), false), ("portal".to_string(), true)]
    );
}
