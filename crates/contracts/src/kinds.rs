//! Record kinds and roles, with the values the contracts use and the names the command line
//! takes (`prescription`, `diagnostic-centre`, …).

use std::fmt;
use std::str::FromStr;

/// A name that is not a known kind or role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}; expected one of: {expected}")]
pub struct ParseError {
    what: &'static str,
    name: String,
    expected: String,
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $ty:ident, $what:literal, [$($(#[$vdoc:meta])* $variant:ident = $value:literal => $name:literal $(| $alias:literal)*),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $ty {
            $($(#[$vdoc])* $variant = $value),+
        }

        impl $ty {
            /// Every value, in contract order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The command-line name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }

            /// The value with this contract number.
            pub fn from_u8(value: u8) -> Option<Self> {
                Self::ALL.get(usize::from(value)).copied()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = ParseError;

            fn from_str(s: &str) -> Result<Self, ParseError> {
                let lower = s.trim().to_ascii_lowercase().replace('_', "-");
                match lower.as_str() {
                    $($name $(| $alias)* => Ok(Self::$variant),)+
                    _ => Err(ParseError {
                        what: $what,
                        name: s.to_string(),
                        expected: Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", "),
                    }),
                }
            }
        }
    };
}

named_enum!(
    /// A record kind (`Kind` in `contracts/src/HealthTypes.sol`).
    Kind, "record kind", [
    /// Family, surgical, obstetric and immunisation history.
    GeneralHistory = 0 => "general-history" | "history",
    /// A prescription.
    Prescription = 1 => "prescription",
    /// A diagnosis.
    Diagnosis = 2 => "diagnosis",
    /// A diagnostic (lab) report.
    DiagnosticReport = 3 => "diagnostic-report" | "report",
    /// Blood group, allergies, habits.
    GeneralInformation = 4 => "general-information" | "information",
    /// A scanned image.
    ScannedImage = 5 => "scanned-image" | "image",
    /// Insurance status.
    InsuranceStatus = 6 => "insurance-status" | "insurance",
    /// The patient's identity record (name, national id, date of birth: encrypted).
    PatientIdentity = 7 => "patient-identity",
    /// A doctor's identity record.
    DoctorIdentity = 8 => "doctor-identity",
    /// A diagnostic centre's identity record.
    CenterIdentity = 9 => "center-identity" | "centre-identity",
    /// An insurer's identity record.
    InsurerIdentity = 10 => "insurer-identity",
]);

named_enum!(
    /// A consortium role (`Role` in `contracts/src/HealthTypes.sol`).
    Role, "role", [
    /// Not registered.
    None = 0 => "none",
    /// Ministry of Health administrator.
    Admin = 1 => "admin",
    /// A hospital.
    Hospital = 2 => "hospital",
    /// A doctor.
    Doctor = 3 => "doctor",
    /// A diagnostic centre.
    DiagnosticCenter = 4 => "diagnostic-center" | "diagnostic-centre" | "center" | "centre",
    /// An insurance company.
    Insurer = 5 => "insurer",
    /// A regulator or researcher.
    Regulator = 6 => "regulator" | "researcher",
    /// A patient.
    Patient = 7 => "patient",
    /// A patient's relative.
    Relative = 8 => "relative",
]);

impl Kind {
    /// The kind's bit in a kinds mask.
    pub const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// The mask of every kind.
pub const ALL_KINDS: u16 = (1 << Kind::ALL.len()) - 1;

/// Parses a comma-separated list of kind names (or `all`) into a mask.
pub fn kinds_mask(list: &str) -> Result<u16, ParseError> {
    let mut mask = 0;
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name.eq_ignore_ascii_case("all") {
            mask |= ALL_KINDS;
        } else {
            mask |= name.parse::<Kind>()?.bit();
        }
    }
    if mask == 0 {
        return Err(ParseError {
            what: "kinds list",
            name: list.to_string(),
            expected: "a comma-separated list of kinds, or all".into(),
        });
    }
    Ok(mask)
}

/// The kinds in a mask, in contract order.
pub fn kinds_of_mask(mask: u16) -> Vec<Kind> {
    Kind::ALL
        .iter()
        .copied()
        .filter(|k| mask & k.bit() != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_values_match_the_contract_order() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
            assert_eq!(kind.name().parse::<Kind>(), Ok(*kind));
            assert_eq!(Kind::from_u8(i as u8), Some(*kind));
        }
        for (i, role) in Role::ALL.iter().enumerate() {
            assert_eq!(*role as usize, i);
            assert_eq!(role.name().parse::<Role>(), Ok(*role));
        }
        assert_eq!(Kind::from_u8(11), None);
        assert_eq!(
            "Diagnostic_Centre".parse::<Role>(),
            Ok(Role::DiagnosticCenter)
        );
    }

    #[test]
    fn masks() {
        assert_eq!(kinds_mask("prescription, diagnosis").unwrap(), 0b110);
        assert_eq!(kinds_mask("all").unwrap(), 0x7ff);
        assert_eq!(
            kinds_of_mask(0b1001),
            vec![Kind::GeneralHistory, Kind::DiagnosticReport]
        );
        let err = kinds_mask("prescription,xray").unwrap_err().to_string();
        assert!(
            err.contains("\"xray\"") && err.contains("scanned-image"),
            "{err}"
        );
        assert!(kinds_mask(" , ").is_err());
    }
}
