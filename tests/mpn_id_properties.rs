//! Property tests of `MpnId::parse`: it accepts exactly 5 to 10 ASCII digits (after
//! trimming), never panics, and round-trips through `Display`.

use dpor::{MpnId, MpnIdError};
use proptest::prelude::*;

/// The rule, restated independently of the implementation.
fn is_valid(input: &str) -> bool {
    let t = input.trim();
    (5..=10).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
}

fn inputs() -> impl Strategy<Value = String> {
    prop_oneof![
        // Near-valid: digits with optional padding.
        "[ \t]{0,2}[0-9]{0,12}[ \t\n]{0,2}",
        // Digits with one intruder: letters, full-width digits, signs, non-ASCII.
        "[0-9]{0,6}[a-zA-Z１２３４５٣+\\-. é]{1}[0-9]{0,6}",
        // Anything at all, including long strings.
        any::<String>(),
        ".{0,300}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_accepts_exactly_the_valid_set(input in inputs()) {
        let parsed = MpnId::parse(&input);
        prop_assert_eq!(parsed.is_ok(), is_valid(&input), "input {:?} gave {:?}", input, parsed);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.as_str(), input.trim());
            prop_assert_eq!(id.to_string().parse::<MpnId>(), Ok(id));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<MpnId>(&json).unwrap(), id);
        }
    }

    #[test]
    fn errors_name_what_is_wrong(input in inputs()) {
        match MpnId::parse(&input) {
            Ok(_) => {}
            Err(MpnIdError::Empty) => prop_assert!(input.trim().is_empty()),
            Err(MpnIdError::InvalidCharacter { index, character }) => {
                prop_assert_eq!(input.chars().nth(index), Some(character));
                prop_assert!(!character.is_ascii_digit());
            }
            Err(MpnIdError::WrongLength { length }) => {
                prop_assert_eq!(length, input.trim().len());
                prop_assert!(!(5..=10).contains(&length));
            }
        }
    }
}

#[test]
fn full_width_digits_are_not_digits() {
    assert!(matches!(
        MpnId::parse("１２３４５"),
        Err(MpnIdError::InvalidCharacter {
            index: 0,
            character: '１'
        })
    ));
}

#[test]
fn very_long_input_is_a_length_error() {
    let long = "7".repeat(1_000_000);
    assert_eq!(
        MpnId::parse(&long),
        Err(MpnIdError::WrongLength { length: 1_000_000 })
    );
}

#[test]
fn messages_are_for_customers() {
    assert_eq!(
        MpnId::parse("56a380").unwrap_err().to_string(),
        "a Partner ID (MPN ID) has digits only: 'a' at position 3 is not a digit"
    );
    assert_eq!(
        MpnId::parse("1234").unwrap_err().to_string(),
        "a Partner ID (MPN ID) has 5 to 10 digits, this one has 4"
    );
    assert_eq!(
        MpnId::parse("").unwrap_err().to_string(),
        "enter the partner's Partner ID (MPN ID): 5 to 10 digits"
    );
}
