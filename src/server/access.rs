//! Who may use the server, and the node-wide settings `CONFIG GET|SET` reads and changes:
//! the `default` user's password (`requirepass`), named users, the idle `timeout`.
//!
//! One [`ServerSettings`] is shared by every connection of the node (all cores); it is read
//! when a connection authenticates or starts a read, never on the data path of a command.
//! Passwords are compared in constant time (in the stored password's length). Settings are
//! per node, like Redis's: `CONFIG SET requirepass` on one node does not reach the others.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;

/// Redis's error for a failed `AUTH` (user unknown or password wrong: the same text).
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Redis's error for a command before authentication.
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// Redis's error for `AUTH password` while the default user has no password.
pub const AUTH_WITHOUT_PASSWORD: &str = "ERR AUTH <password> called without any password \
    configured for the default user. Are you sure your configuration is correct?";

/// The user a connection is when it authenticates with a password alone.
pub const DEFAULT_USER: &[u8] = b"default";

/// The node's access settings (see the module docs).
#[derive(Debug, Default)]
pub struct ServerSettings {
    /// The `default` user's password; `None`: no password, connections start authenticated.
    requirepass: RwLock<Option<Vec<u8>>>,
    /// Named users and their passwords (from the configuration; `default` is not among them).
    users: Vec<(Vec<u8>, Vec<u8>)>,
    /// Seconds a connection may stay idle before it is closed; 0: never.
    timeout_seconds: AtomicU64,
}

impl ServerSettings {
    /// The settings of a node started from `config`.
    #[must_use]
    pub fn from_config(config: &Config) -> ServerSettings {
        let mut requirepass = config.requirepass.as_ref().map(String::as_bytes);
        let mut users = Vec::new();
        for (name, password) in &config.users {
            if name.as_bytes() == DEFAULT_USER {
                requirepass = Some(password.as_bytes());
            } else {
                users.push((name.as_bytes().to_vec(), password.as_bytes().to_vec()));
            }
        }
        ServerSettings {
            requirepass: RwLock::new(requirepass.map(<[u8]>::to_vec)),
            users,
            timeout_seconds: AtomicU64::new(config.timeout_seconds),
        }
    }

    /// Whether a new connection must authenticate before it may run commands.
    #[must_use]
    pub fn requires_auth(&self) -> bool {
        self.requirepass.read().is_ok_and(|password| password.is_some())
    }

    /// `requirepass` as `CONFIG GET` shows it (empty: none).
    #[must_use]
    pub fn requirepass(&self) -> Vec<u8> {
        self.requirepass.read().ok().and_then(|password| password.clone()).unwrap_or_default()
    }

    /// `CONFIG SET requirepass`: an empty password removes it.
    pub fn set_requirepass(&self, password: &[u8]) {
        if let Ok(mut stored) = self.requirepass.write() {
            *stored = if password.is_empty() { None } else { Some(password.to_vec()) };
        }
    }

    /// The idle timeout in seconds (0: none).
    #[must_use]
    pub fn timeout_seconds(&self) -> u64 {
        self.timeout_seconds.load(Ordering::Relaxed)
    }

    /// `CONFIG SET timeout`.
    pub fn set_timeout_seconds(&self, seconds: u64) {
        self.timeout_seconds.store(seconds, Ordering::Relaxed);
    }

    /// Checks `AUTH [user] password` (`user` `None`: the default user); the error text when
    /// refused.
    ///
    /// # Errors
    /// [`WRONGPASS`] for an unknown user or a wrong password; [`AUTH_WITHOUT_PASSWORD`] for
    /// `AUTH password` while the default user has none.
    pub fn authenticate(&self, user: Option<&[u8]>, password: &[u8]) -> Result<(), &'static str> {
        let bare = user.is_none();
        let user = user.unwrap_or(DEFAULT_USER);
        if user == DEFAULT_USER {
            let stored = self.requirepass.read().ok().and_then(|stored| stored.clone());
            return match stored {
                Some(stored) if same_password(&stored, password) => Ok(()),
                Some(_) => Err(WRONGPASS),
                // Redis's `nopass` default user accepts any password, but not a bare one.
                None if bare => Err(AUTH_WITHOUT_PASSWORD),
                None => Ok(()),
            };
        }
        match self.users.iter().find(|(name, _)| name == user) {
            Some((_, stored)) if same_password(stored, password) => Ok(()),
            _ => Err(WRONGPASS),
        }
    }
}

/// Whether `given` equals `stored`, taking time that depends only on `stored`'s length (not
/// on where the two differ), so a client cannot find a password byte by byte by timing.
#[must_use]
pub fn same_password(stored: &[u8], given: &[u8]) -> bool {
    let mut difference = u8::from(stored.len() != given.len());
    for (index, byte) in stored.iter().enumerate() {
        let other = given.get(index).copied().unwrap_or(!byte);
        difference |= std::hint::black_box(byte ^ other);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(requirepass: Option<&str>, users: &[(&str, &str)]) -> ServerSettings {
        ServerSettings {
            requirepass: RwLock::new(requirepass.map(|p| p.as_bytes().to_vec())),
            users: users
                .iter()
                .map(|(u, p)| (u.as_bytes().to_vec(), p.as_bytes().to_vec()))
                .collect(),
            timeout_seconds: AtomicU64::new(0),
        }
    }

    #[test]
    fn passwords_compare_exactly() {
        assert!(same_password(b"secret", b"secret"));
        assert!(!same_password(b"secret", b"secreT"));
        assert!(!same_password(b"secret", b"secret!"));
        assert!(!same_password(b"secret", b"secre"));
        assert!(!same_password(b"secret", b""));
        assert!(!same_password(b"", b"x"));
        assert!(same_password(b"", b""));
    }

    #[test]
    fn default_user_and_named_users_authenticate_with_redis_errors() {
        let open = settings(None, &[("alice", "a1")]);
        assert!(!open.requires_auth());
        assert_eq!(open.authenticate(None, b"anything"), Err(AUTH_WITHOUT_PASSWORD));
        assert_eq!(open.authenticate(Some(b"default"), b"anything"), Ok(()));
        assert_eq!(open.authenticate(Some(b"alice"), b"a1"), Ok(()));
        assert_eq!(open.authenticate(Some(b"alice"), b"a2"), Err(WRONGPASS));
        assert_eq!(open.authenticate(Some(b"bob"), b"a1"), Err(WRONGPASS));
        let closed = settings(Some("pw"), &[]);
        assert!(closed.requires_auth());
        assert_eq!(closed.authenticate(None, b"pw"), Ok(()));
        assert_eq!(closed.authenticate(Some(b"default"), b"pw"), Ok(()));
        assert_eq!(closed.authenticate(None, b"px"), Err(WRONGPASS));
        closed.set_requirepass(b"");
        assert!(!closed.requires_auth());
        assert_eq!(closed.requirepass(), b"");
    }

    #[test]
    fn a_default_entry_among_the_users_is_requirepass() {
        let config = Config {
            users: vec![("default".into(), "d".into()), ("ops".into(), "o".into())],
            ..crate::config::Settings::resolve(None, crate::config::Settings::default(), 1).unwrap()
        };
        let settings = ServerSettings::from_config(&config);
        assert!(settings.requires_auth());
        assert_eq!(settings.authenticate(None, b"d"), Ok(()));
        assert_eq!(settings.authenticate(Some(b"ops"), b"o"), Ok(()));
    }
}
