//! The kinds of change other services learn about, numbered as
//! `account.v1.EventType` (the numbers are stored).

/// What happened to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    AccountRegistered,
    AccountVerified,
    ProfileUpdated,
    EmailChanged,
    /// Also after a password reset.
    PasswordChanged,
    AccountDeleted,
    /// A sign-in started a session.
    SessionStarted,
    /// A session ended, for whatever reason.
    SessionEnded,
    /// Two-step sign-in was turned on or off.
    SecondFactorChanged,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::AccountRegistered,
        EventType::AccountVerified,
        EventType::ProfileUpdated,
        EventType::EmailChanged,
        EventType::PasswordChanged,
        EventType::AccountDeleted,
        EventType::SessionStarted,
        EventType::SessionEnded,
        EventType::SecondFactorChanged,
    ];

    /// The `account.v1.EventType` number, as stored.
    pub fn number(self) -> i64 {
        match self {
            EventType::AccountRegistered => 1,
            EventType::AccountVerified => 2,
            EventType::ProfileUpdated => 3,
            EventType::EmailChanged => 4,
            EventType::PasswordChanged => 5,
            EventType::AccountDeleted => 6,
            EventType::SessionStarted => 7,
            EventType::SessionEnded => 8,
            EventType::SecondFactorChanged => 9,
        }
    }

    pub fn from_number(n: i64) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.number() == n)
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn numbers_round_trip_and_match_the_proto() {
        use crate::proto::account::v1::EventType as Pb;
        for t in EventType::ALL {
            assert_eq!(EventType::from_number(t.number()), Some(t));
            assert!(Pb::try_from(i32::try_from(t.number()).unwrap()).is_ok());
        }
        assert_eq!(EventType::from_number(0), None);
        assert_eq!(
            Pb::AccountVerified as i64,
            EventType::AccountVerified.number()
        );
        assert_eq!(
            Pb::AccountDeleted as i64,
            EventType::AccountDeleted.number()
        );
    }
}
