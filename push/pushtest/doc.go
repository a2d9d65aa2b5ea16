// Package pushtest provides local fakes of Apple Push Notification
// service (APNs) and Firebase Cloud Messaging (FCM) for tests, in the
// way net/http/httptest provides a server: tests of the push senders,
// of the dispatcher and end-to-end tests of the whole service run the
// real clients (github.com/sideshow/apns2 and firebase.google.com/go/v4)
// against these fakes on 127.0.0.1, and no request leaves the machine.
//
// The fakes check requests the way the providers do and answer with the
// providers' own status codes and error bodies, so the code under test
// meets the answers it will meet in production:
//
//   - [APNs] is an HTTP/2 server over TLS. It verifies the ES256 provider
//     token (JWT) against the keys registered with [APNs.AddKey], the
//     apns-* headers, the device token and the payload, and answers
//     {"reason": "..."} errors as Apple documents them.
//   - [FCM] serves the OAuth 2.0 token endpoint that a service account's
//     token_uri names and the HTTP v1 send method. It verifies the RS256
//     assertion against the accounts from [FCM.NewServiceAccount], issues
//     access tokens, requires them on every send, and answers errors in
//     Google's format with the FcmError details that the firebase client
//     turns into messaging.IsUnregistered and its siblings.
//
// Both can be scripted per device token ([APNs.Script], [FCM.Script])
// with a sequence of [Answer]s, given a default answer, or made to fail at
// random for chaos tests; both record what they accepted.
//
// This package is for tests only; it imports testing and the provider
// clients, and nothing of hotzone.
//
// # Caveats
//
//   - A request is first checked as the provider would check it; only a
//     request that passes is given its scripted answer. A bad JWT or
//     header is therefore answered with its own error whatever the script
//     says, and does not use up a scripted answer.
//   - A dropped request ([Answer.Drop], [Answer.CloseConn]) is not recorded
//     as received: the fake models the push as lost. The client cannot
//     tell, which is the point.
//   - The firebase client retries by itself, and sleeps between tries (see
//     [FCM]): a test that answers 503 to every try of a send waits about
//     seven seconds. Script a success after one or two failures, or cancel
//     the context, to keep tests fast.
//   - The FCM fake is plain HTTP. The firebase client fetches tokens with
//     http.DefaultClient, which would not trust a test certificate.
//   - Times are taken from the wall clock; the fakes do not run inside a
//     testing/synctest bubble, whose fake clock does not cover real
//     network I/O.
package pushtest
