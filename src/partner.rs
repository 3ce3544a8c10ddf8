//! Partners: [`Partner`] as the directory lists it, and the incentive [`Program`]s.

use std::collections::BTreeSet;
use std::fmt;

use smol_str::SmolStr;

use serde::{Deserialize, Serialize};

use crate::id::MpnId;

/// A partner incentive program that a partner of record association counts for.
///
/// The customer-side flow is the same for both; the service is configured for one
/// ([`PorService::with_program`](crate::PorService::with_program)), and a partner must
/// be enrolled in it to be designated.
///
/// # Examples
///
/// ```
/// use dpor::*;
///
/// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam")
///     .enrolled_in(Program::OnlineServicesUsage);
/// assert!(fabrikam.is_enrolled(Program::OnlineServicesUsage));
/// assert!(!fabrikam.is_enrolled(Program::OnlineServicesSell));
///
/// assert_eq!(Program::OnlineServicesSell.to_string(), "Online Services Sell");
/// assert_eq!(serde_json::to_string(&Program::OnlineServicesSell)?, r#""online_services_sell""#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Program {
    /// The Online Services **Sell** program (KB3185444): the default.
    OnlineServicesSell,
    /// The Online Services **Usage** program (KB3185425).
    OnlineServicesUsage,
}

impl Program {
    /// Every program, in order.
    const ALL: [Program; 2] = [Program::OnlineServicesSell, Program::OnlineServicesUsage];

    /// Its bit in a [`Programs`] set: a `match`, so that a new program cannot be
    /// forgotten here, and [`ALL`](Self::ALL) is checked against it in the tests.
    const fn bit(self) -> u8 {
        match self {
            Program::OnlineServicesSell => 1,
            Program::OnlineServicesUsage => 2,
        }
    }
}

/// The programs a partner is enrolled in: a set of [`Program`]s in one byte, a bit per
/// program, so that a [`Partner`] (which directories hand out by value) clones without
/// allocating. Serialized as a set is: a list, in order.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Programs(u8);

impl Programs {
    fn insert(&mut self, program: Program) {
        self.0 |= program.bit();
    }

    fn contains(self, program: Program) -> bool {
        self.0 & program.bit() != 0
    }

    fn iter(self) -> impl Iterator<Item = Program> {
        Program::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl fmt::Debug for Programs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for Programs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // With its length, as a set gives it: formats that write lengths need it.
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.count_ones() as usize))?;
        for program in self.iter() {
            seq.serialize_element(&program)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Programs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut programs = Programs::default();
        for program in BTreeSet::<Program>::deserialize(deserializer)? {
            programs.insert(program);
        }
        Ok(programs)
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Program::OnlineServicesSell => "Online Services Sell",
            Program::OnlineServicesUsage => "Online Services Usage",
        })
    }
}

/// A partner as the [`PartnerDirectory`](crate::PartnerDirectory) lists it: what "Check
/// ID" shows the customer, and where the confirmation email goes.
///
/// # Examples
///
/// ```
/// use dpor::{MpnId, Partner, Program};
///
/// let partner = Partner::new(MpnId::parse("565380")?, "Fabrikam Consulting")
///     .with_location("Seattle, US")
///     .with_contact_email("por@fabrikam.example")
///     .enrolled_in(Program::OnlineServicesSell);
/// assert_eq!(partner.name(), "Fabrikam Consulting");
/// assert!(partner.is_enrolled(Program::OnlineServicesSell));
/// assert!(!partner.is_enrolled(Program::OnlineServicesUsage));
/// # Ok::<(), dpor::MpnIdError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    mpn_id: MpnId,
    #[serde(with = "crate::text::name")]
    name: SmolStr,
    #[serde(default, with = "crate::text::location::option")]
    location: Option<SmolStr>,
    #[serde(default, with = "crate::text::email::option")]
    contact_email: Option<SmolStr>,
    programs: Programs,
}

impl Partner {
    /// A partner with an id and a display name, no location, no contact and enrolled in
    /// no program.
    pub fn new(mpn_id: MpnId, name: impl Into<String>) -> Self {
        Partner {
            mpn_id,
            name: SmolStr::from(name.into()),
            location: None,
            contact_email: None,
            programs: Programs::default(),
        }
    }

    /// Sets the location shown next to the name after "Check ID".
    pub fn with_location(self, location: impl Into<String>) -> Self {
        Partner {
            location: Some(SmolStr::from(location.into())),
            ..self
        }
    }

    /// Sets the address that receives the "added" and "removed" emails.
    pub fn with_contact_email(self, email: impl Into<String>) -> Self {
        Partner {
            contact_email: Some(SmolStr::from(email.into())),
            ..self
        }
    }

    /// Enrols the partner in `program` (in addition to any others).
    pub fn enrolled_in(mut self, program: Program) -> Self {
        self.programs.insert(program);
        self
    }

    /// The partner's MPN ID.
    pub fn mpn_id(&self) -> MpnId {
        self.mpn_id
    }

    /// The partner's display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partner's location, if the directory gives one.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// The address notifications go to, if the directory gives one.
    pub fn contact_email(&self) -> Option<&str> {
        self.contact_email.as_deref()
    }

    /// Checks the partner's free text against the bounds the records keep
    /// ([`text`](crate::text)): its name, location and contact email. A partner built
    /// in code is not checked until a record holding it is written; the service checks
    /// each partner it checks or designates, so that a store never has one to refuse.
    ///
    /// ```
    /// use dpor::{MpnId, Partner};
    ///
    /// let fabrikam = Partner::new(MpnId::parse("565380")?, "Fabrikam");
    /// assert!(fabrikam.check_text().is_ok());
    /// let long = fabrikam.with_contact_email(format!("{}@example.com", "x".repeat(250)));
    /// assert!(long.check_text().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TextError::TooLong`](crate::text::TextError::TooLong) for the first field too
    /// long.
    pub fn check_text(&self) -> Result<(), crate::text::TextError> {
        use crate::text::{email, location, name};
        name::check(&self.name)?;
        self.location.as_deref().map_or(Ok(()), location::check)?;
        self.contact_email.as_deref().map_or(Ok(()), email::check)
    }

    /// Whether the partner is enrolled in `program`.
    pub fn is_enrolled(&self, program: Program) -> bool {
        self.programs.contains(program)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_has_its_own_bit_and_round_trips() {
        let mut all = Programs::default();
        for (i, program) in Program::ALL.into_iter().enumerate() {
            assert_eq!(program.bit().count_ones(), 1);
            assert!(!all.contains(program), "{program:?} shares a bit");
            all.insert(program);
            assert_eq!(all.iter().count(), i + 1);
        }
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(json, r#"["online_services_sell","online_services_usage"]"#);
        assert_eq!(serde_json::from_str::<Programs>(&json).unwrap(), all);
    }
}
