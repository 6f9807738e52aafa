//! Wake-ups that follow a storage commit: the writes that queue mail or write
//! events tell whoever waits for them, once, after the commit succeeded.

use std::sync::Arc;

/// A wake-up to run after a commit. It runs on the committing task, so it
/// must be quick and must not block (a `Notify::notify_one`, a watch send).
type Hook = Arc<dyn Fn() + Send + Sync>;

/// What a backend runs after a successful commit of a write that queued
/// mail or wrote events. Empty by default: nothing is woken.
///
/// The storage keeps the hooks for as long as it lives, so a hook must not
/// hold the storage itself, or anything that holds it, strongly (hold a
/// `Weak` instead): the two would keep each other alive.
#[derive(Clone, Default)]
pub struct CommitHooks {
    mail_queued: Option<Hook>,
    events_written: Option<Hook>,
}

impl CommitHooks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `hook` after each commit that queued mail (or gave mail back to
    /// the queue): the delivery workers' wake-up.
    pub fn on_mail_queued(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.mail_queued = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` after each commit that may have written account events:
    /// the event watchers' wake-up.
    pub fn on_events_written(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.events_written = Some(Arc::new(hook));
        self
    }

    /// Runs the hooks that `wakes` names.
    pub(super) fn run(&self, wakes: Wakes) {
        if wakes.mail_queued {
            if let Some(hook) = &self.mail_queued {
                hook();
            }
        }
        if wakes.events_written {
            if let Some(hook) = &self.events_written {
                hook();
            }
        }
    }
}

impl std::fmt::Debug for CommitHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitHooks")
            .field("mail_queued", &self.mail_queued.is_some())
            .field("events_written", &self.events_written.is_some())
            .finish()
    }
}

/// What a write did that its commit should announce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Wakes {
    pub mail_queued: bool,
    pub events_written: bool,
}

impl Wakes {
    pub(super) const EVENTS: Wakes = Wakes {
        mail_queued: false,
        events_written: true,
    };
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn only_the_named_hooks_run() {
        let mail = Arc::new(AtomicU32::new(0));
        let events = Arc::new(AtomicU32::new(0));
        let hooks = CommitHooks::new()
            .on_mail_queued({
                let mail = Arc::clone(&mail);
                move || {
                    mail.fetch_add(1, Ordering::Relaxed);
                }
            })
            .on_events_written({
                let events = Arc::clone(&events);
                move || {
                    events.fetch_add(1, Ordering::Relaxed);
                }
            });
        hooks.run(Wakes::default());
        hooks.run(Wakes::EVENTS);
        hooks.run(Wakes {
            mail_queued: true,
            events_written: true,
        });
        assert_eq!(mail.load(Ordering::Relaxed), 1);
        assert_eq!(events.load(Ordering::Relaxed), 2);
        CommitHooks::new().run(Wakes::EVENTS);
    }
}
