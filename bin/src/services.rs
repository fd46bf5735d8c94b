//! The composition root: the one place where adapters are chosen and use cases are built.
//!
//! `authlog serve`, every CLI verb and the black-box test harness build their object graph here,
//! so a new use case is wired once. It is built in two steps because the command line must not
//! do what only a server needs: [`Services::open`] opens the database and builds the use cases
//! that need neither tokens nor password hashing (every CLI verb runs on these); [`Services::serving`]
//! adds the signing keys (made on a first start, which a read-only CLI verb must never do), the
//! token service, Argon2, and the use cases and follower that use them.

use std::sync::Arc;

use anyhow::Context;
use authlog_application::admission::{Admission, AdmissionLimits};
use authlog_application::audit::Audit;
use authlog_application::authenticate::Authenticate;
use authlog_application::checks::ThrottledChecks;
use authlog_application::directory::Directory;
use authlog_application::email::Emails;
use authlog_application::erase::EraseUser;
use authlog_application::feed::FeedHub;
use authlog_application::instance::{KeyRing, RevokedRoles, RevokedSessions};
use authlog_application::login::LogIn;
use authlog_application::me::Me;
use authlog_application::outbox::MailOutbox;
use authlog_application::password::ChangePassword;
use authlog_application::ports::{Clock, IdGenerator, TokenService};
use authlog_application::refresh::Refresh;
use authlog_application::register::RegisterUser;
use authlog_application::revocation_view::RevocationSet;
use authlog_application::revoke::RevokeSession;
use authlog_application::roles::ChangeRoles;
use authlog_application::sessions::Sessions;
use authlog_application::signed_checkpoints::SignedCheckpoints;
use authlog_application::signing_keys::SigningKeys;
use authlog_application::status::AccountStatus;
use authlog_application::subscribers::{Runner, Subscriber};
use authlog_application::{Throttle, TokenLifetimes};
use authlog_crypto::{
    Argon2Hasher, Argon2Params, ConcealedNames, Ed25519KeyGenerator, JwtConfig, JwtTokens,
    RandomCodes, SealedKeyStore, UuidV7Ids, VerifiedTokenCache,
};
use authlog_http::state::RenderMetrics;
use authlog_http::{AppState, CookieSettings};
use authlog_mail::SmtpMailer;
use authlog_store::Store;

use crate::cli::ServeArgs;
use crate::database::{Database, Opened};

/// Verified tokens remembered at most (about 1 KiB each).
const TOKEN_CACHE: usize = 10_000;

/// What every command runs on: the opened database, the system ports, and the use cases that
/// need neither tokens nor password hashing.
pub struct Services {
    /// The log, the keys and the read models: every storage port.
    pub store: Arc<Store>,
    /// The signing keys, sealed under the master key in the store.
    pub keys: Arc<SealedKeyStore>,
    /// Conceals names typed at password checks that are no account's.
    pub names: Arc<ConcealedNames>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// This process's view of revoked sessions. A CLI process serves no tokens, so its view is
    /// simply dropped at exit; running servers learn of its revocations from the log.
    pub revocations: Arc<RevocationSet>,
    pub revoke: Arc<RevokeSession>,
    pub sessions: Arc<Sessions>,
    pub roles: Arc<ChangeRoles>,
    pub status: Arc<AccountStatus>,
    pub erase: Arc<EraseUser>,
    pub signing_keys: SigningKeys,
    pub audit: Audit,
    pub directory: Arc<Directory>,
    pub checkpoints: Arc<SignedCheckpoints>,
    pub me: Me,
}

impl Services {
    /// Opens `database` (applying migrations, reading its master key) and builds the use cases
    /// every command needs, on `clock`.
    ///
    /// # Errors
    /// A database that cannot be reached, opened or migrated, or a master key that cannot be
    /// read or is not the database's.
    pub async fn open(database: &Database, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let Opened {
            store,
            keys,
            names,
            checkpoint_key,
        } = crate::database::open(database).await?;
        // Retention is kept even by an instance that conceals no name today.
        let forgotten = names
            .forget_expired(clock.now())
            .await
            .context("cannot forget the name keys past their retention")?;
        if forgotten > 0 {
            tracing::info!(
                keys = forgotten,
                "forgot the name keys past their retention"
            );
        }
        let ids: Arc<dyn IdGenerator> = Arc::new(UuidV7Ids);
        let revocations = Arc::new(RevocationSet::new());
        let revoke = Arc::new(RevokeSession::new(
            store.clone(),
            revocations.clone(),
            clock.clone(),
        ));
        let sessions = Arc::new(Sessions::new(
            store.clone(),
            store.clone(),
            revoke.clone(),
            revocations.clone(),
            clock.clone(),
        ));
        Ok(Self {
            roles: Arc::new(ChangeRoles::new(
                store.clone(),
                store.clone(),
                revocations.clone(),
                clock.clone(),
            )),
            status: Arc::new(AccountStatus::new(
                store.clone(),
                store.clone(),
                sessions.clone(),
                clock.clone(),
            )),
            erase: Arc::new(EraseUser::new(
                store.clone(),
                store.clone(),
                sessions.clone(),
                clock.clone(),
            )),
            signing_keys: SigningKeys::new(
                keys.clone(),
                Arc::new(Ed25519KeyGenerator),
                clock.clone(),
            ),
            audit: Audit::new(store.clone(), store.clone(), names.clone()),
            directory: Arc::new(Directory::new(store.clone(), clock.clone())),
            checkpoints: Arc::new(SignedCheckpoints::new(store.clone(), checkpoint_key)),
            me: Me::new(store.clone()),
            clock,
            ids,
            store,
            keys,
            names,
            revocations,
            revoke,
            sessions,
        })
    }

    /// Adds what serving needs: the signing keys (made if there are none), the token service
    /// with its cache of verified tokens, Argon2, the use cases that issue tokens or hash
    /// passwords, and the follower that keeps this process current with the log.
    ///
    /// # Errors
    /// Keys that cannot be loaded or made, a bad HS256 secret or Argon2 setting, or a log whose
    /// recent revocations cannot be read.
    pub async fn serving(
        self,
        args: &ServeArgs,
        render_metrics: RenderMetrics,
    ) -> anyhow::Result<Serving> {
        let lifetimes = TokenLifetimes {
            access: time::Duration::seconds(args.access_ttl.into()),
            refresh: time::Duration::seconds(args.refresh_ttl.into()),
            session_max_age: time::Duration::seconds(args.session_max_age.into()),
            refresh_reuse_grace: time::Duration::seconds(args.refresh_reuse_grace.into()),
        };
        let throttle = Throttle {
            max_failures: args.login_max_failures,
            window: time::Duration::seconds(args.login_window.into()),
        };
        let keys = self
            .signing_keys
            .load_or_create()
            .await
            .context("cannot load the signing keys")?;
        let jwt = JwtConfig {
            issuer: args.issuer.clone(),
            audience: args.audience.clone(),
            leeway_seconds: args.leeway.into(),
            max_token_lifetime: lifetimes.refresh.max(lifetimes.access),
        };
        let jwt = match args.hs256_secret()? {
            Some(secret) => JwtTokens::hs256(jwt, &secret),
            None => JwtTokens::eddsa(jwt, keys, self.clock.now()),
        }?;
        let tokens: Arc<dyn TokenService> = Arc::new(VerifiedTokenCache::new(jwt, TOKEN_CACHE));
        let params = Argon2Params {
            memory_kib: args.argon2_memory_kib,
            iterations: args.argon2_iterations,
            parallelism: args.argon2_parallelism,
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let hasher = Arc::new(
            Argon2Hasher::new(params, cores)
                .await
                .context("bad Argon2 settings")?,
        );
        let admission = Admission::new(AdmissionLimits {
            total: args.admission_total.map_or(16 * cores, |n| n as usize),
            per_client: args.admission_per_client as usize,
        });

        // A revoked session matters while one of its access tokens can still verify.
        let window = lifetimes.access
            + time::Duration::seconds(args.leeway.into())
            + time::Duration::minutes(1);
        let mut subscribers: Vec<Arc<dyn Subscriber>> = vec![
            Arc::new(RevokedSessions::new(
                self.store.clone(),
                self.revocations.clone(),
                self.clock.clone(),
                window,
            )),
            Arc::new(RevokedRoles::new(
                self.store.clone(),
                self.revocations.clone(),
                self.clock.clone(),
                window,
            )),
            Arc::new(KeyRing::new(
                self.keys.clone(),
                tokens.clone(),
                self.clock.clone(),
            )),
        ];
        let mailer = match &args.smtp_url {
            Some(url) => Some(Arc::new(
                SmtpMailer::new(url, &args.mail_from).context("bad mail settings")?,
            )),
            None => None,
        };
        if let Some(mailer) = &mailer {
            subscribers.push(Arc::new(MailOutbox::new(
                mailer.clone(),
                self.store.clone(),
                self.clock.clone(),
                args.issuer.clone(),
            )));
        }
        let runner = Arc::new(
            Runner::start(
                self.store.clone(),
                self.store.clone(),
                self.store.clone(),
                self.clock.clone(),
                self.ids.new_id().to_string(),
                subscribers,
            )
            .await
            .context("cannot read recent revocations from the event log")?,
        );

        let Self {
            clock,
            ids,
            store,
            names,
            revocations,
            revoke,
            sessions,
            roles,
            status,
            erase,
            directory,
            checkpoints,
            audit,
            me,
            ..
        } = self;
        let checks = Arc::new(ThrottledChecks::new(
            store.clone(),
            clock.clone(),
            ids.clone(),
            throttle,
            admission.clone(),
            names,
        ));
        let emails = mailer.map(|_| {
            Arc::new(Emails::new(
                store.clone(),
                store.clone(),
                store.clone(),
                sessions.clone(),
                hasher.clone(),
                admission.clone(),
                Arc::new(RandomCodes),
                ids.clone(),
                clock.clone(),
            ))
        });
        let mut register = RegisterUser::new(
            store.clone(),
            hasher.clone(),
            clock.clone(),
            ids.clone(),
            admission,
        );
        if let Some(emails) = &emails {
            register = register.with_mail(emails.clone());
        }
        // The feed's one reader of new events, for as long as the runner follows the log.
        let feed = Arc::new(FeedHub::default());
        tokio::spawn({
            let (feed, audit, heads, stopped) = (
                feed.clone(),
                audit.clone(),
                runner.heads(),
                runner.stopped(),
            );
            async move { feed.follow(audit, heads, stopped).await }
        });
        let state = AppState {
            feed,
            register,
            emails,
            login: LogIn::new(
                store.clone(),
                checks.clone(),
                hasher.clone(),
                tokens.clone(),
                clock.clone(),
                ids.clone(),
                lifetimes,
            ),
            authenticate: Authenticate::new(tokens.clone(), revocations.clone(), clock.clone()),
            refresh: Refresh::new(
                store.clone(),
                tokens.clone(),
                revocations,
                clock.clone(),
                ids,
                lifetimes,
            ),
            password: ChangePassword::new(store.clone(), checks, hasher, clock, sessions.clone()),
            revoke,
            sessions,
            roles,
            status,
            erase,
            directory,
            checkpoints,
            me,
            audit,
            tokens,
            log: store.clone(),
            subscribers: runner.clone(),
            trusted_proxies: args.trusted_proxies.clone(),
            render_metrics,
            issuer: args.issuer.clone(),
            cookies: CookieSettings {
                secure: args.cookie_secure,
                host_prefix: args.cookie_host_prefix,
                refresh_path_only: args.refresh_cookie_path_only,
            },
        };
        Ok(Serving {
            state: Arc::new(state),
            runner,
            store,
        })
    }
}

/// A server's whole object graph: the handlers' state, and the runner of the subscribers that
/// keep it current.
pub struct Serving {
    pub state: Arc<AppState>,
    pub runner: Arc<Runner>,
    pub store: Arc<Store>,
}
