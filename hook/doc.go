// Package hook holds the parts of webhook delivery that need no storage:
// signing deliveries (Sign, Verify, NewSecret), checking the URL a user
// registers (CheckURL, CheckHost, Public), an HTTP client that cannot be
// pointed at the server's own network (NewClient), and retry timing
// (Retryable, NextAttempt). It imports only the standard library; the
// delivery queue and its storage live elsewhere and call it.
//
// # Verifying a delivery
//
// Each delivery is a POST of JSON {"id", "type", "created_at", "data"}
// with the header
//
//	Hotzone-Signature: t=1767225600,v1=6445feeb7618c46706b1638a5becdb9b2b437f1fe474de4fcb237347db70ceef
//
// where t is the sending time in Unix seconds and v1 is the lowercase hex
// HMAC-SHA256, keyed with the webhook's secret (the whole "whsec_…"
// string), of t, a ".", and the raw request body. A receiver, in any
// language:
//
//  1. reads the raw body bytes before any JSON decoding: re-encoded JSON
//     is not the body that was signed;
//  2. computes HMAC-SHA256(secret, t + "." + body) and compares it with
//     each v1 value in constant time (hmac.Equal, crypto.timingSafeEqual,
//     hmac.compare_digest), accepting if any matches; there are two while
//     a secret is being rotated;
//  3. rejects a t more than 5 minutes from its own clock, so a captured
//     request cannot be replayed later;
//  4. answers 2xx quickly, and dedupes on the delivery's "id": delivery is
//     at least once, so the same id can arrive again after a timeout.
//
// In Go, Verify does steps 2 and 3; see the example.
//
// # Caveats
//
//   - CheckHost is advice for the user at registration; the guard is the
//     client's connect-time check, since DNS can answer differently later.
//     Only NewClient's client has that guard: a delivery sent with any
//     other client can reach internal addresses.
//   - Redirects are never followed and a 3xx is a final failure
//     (Retryable), so a receiver must be registered at its final URL.
//   - Verify's tolerance works both ways: a receiver whose clock is more
//     than the tolerance off rejects every delivery as expired.
//   - The secret is shown once, when the webhook is created, and the key
//     is its bytes exactly as shown: a receiver that trims or decodes the
//     "whsec_" prefix computes a different HMAC.
package hook
