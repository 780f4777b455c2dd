//! `tollgate verify ...` and `tollgate sign ...`: webhook signatures through
//! the core's verifiers and signers.

use tollgate::verify::{
    sign_razorpay, sign_stripe_rotating, RazorpayVerifier, StripeVerifier, RAZORPAY_SIGNATURE_HEADER,
    STRIPE_SIGNATURE_HEADER,
};

use crate::util::{now_or_clock, outln, read_bytes, Failure};
use crate::{SignCommand, VerifyRazorpayArgs, VerifyStripeArgs};

/// Drops a leading `Header-Name:` pasted along with the value.
fn strip_header_name<'a>(value: &'a str, name: &str) -> &'a str {
    let v = value.trim();
    match v.get(..name.len() + 1) {
        Some(prefix) if prefix.eq_ignore_ascii_case(&format!("{name}:")) => v[name.len() + 1..].trim(),
        _ => v,
    }
}

pub fn verify_stripe(a: &VerifyStripeArgs) -> Result<(), Failure> {
    let payload = read_bytes(&a.payload)?;
    let mut verifier = StripeVerifier::new(&a.secrets).map_err(Failure::new)?;
    verifier =
        if a.no_timestamp_check { verifier.without_timestamp_check() } else { verifier.with_tolerance(a.tolerance) };
    let header = strip_header_name(&a.header, STRIPE_SIGNATURE_HEADER);
    match verifier.verify(&payload, Some(header), now_or_clock(a.now)) {
        Ok(_) => {
            outln!("valid")?;
            Ok(())
        }
        Err(e) => Err(Failure::new(format!("invalid Stripe signature: {e} ({})", e.code()))),
    }
}

pub fn verify_razorpay(a: &VerifyRazorpayArgs) -> Result<(), Failure> {
    let payload = read_bytes(&a.payload)?;
    let verifier = RazorpayVerifier::new(&a.secrets).map_err(Failure::new)?;
    let sig = strip_header_name(&a.signature, RAZORPAY_SIGNATURE_HEADER);
    match verifier.verify(&payload, Some(sig)) {
        Ok(()) => {
            outln!("valid")?;
            Ok(())
        }
        Err(e) => Err(Failure::new(format!("invalid Razorpay signature: {e} ({})", e.code()))),
    }
}

pub fn sign(cmd: &SignCommand) -> Result<(), Failure> {
    match cmd {
        SignCommand::Stripe { secrets, payload, now } => {
            // The same checks as a verifier's, so a header is never made with a secret
            // that no verifier would accept.
            StripeVerifier::new(secrets).map_err(Failure::new)?;
            // `t=` is unsigned Unix seconds: a verifier refuses `t=-1` as malformed, so a
            // time before 1970 (`--now 1969-12-31T00:00:00Z`) would make a header no
            // verifier accepts.
            let at = now_or_clock(*now);
            if at.unix() < 0 {
                return Err(Failure::new(format!(
                    "cannot sign at {at}: a Stripe-Signature time (t=) is Unix seconds, from 1970-01-01T00:00:00Z on"
                )));
            }
            let body = read_bytes(payload)?;
            outln!("{}", sign_stripe_rotating(&body, secrets, at))?;
        }
        SignCommand::Razorpay { secret, payload } => {
            RazorpayVerifier::new([secret]).map_err(Failure::new)?;
            // `verify razorpay` (and TOLLGATE_RAZORPAY_SECRET) read a comma as the separator
            // of several secrets, so a signature made with `a,b` as one secret would never be
            // accepted by it; a Razorpay signature is made with one secret.
            if secret.contains(',') {
                return Err(Failure::new(
                    "the secret contains a comma: `verify razorpay` reads commas as separating several secrets, \
                     so this signature would not verify; sign with one secret",
                ));
            }
            let body = read_bytes(payload)?;
            outln!("{}", sign_razorpay(&body, secret))?;
        }
    }
    Ok(())
}
