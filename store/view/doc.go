// Package view holds what every node keeps in memory whatever the
// backend: the brands and their policies, the key table, each brand's
// stores with their fence R-tree, the live events with their counts, and
// the change signals that live streams wait on. The hot paths (a ping's
// auth, policy and fence match; the dispatcher's event lookup) read
// these and never wait on the disk or the network.
//
// A backend fills the views when it opens and changes them after each
// write it commits, so a view never shows what a crash could take back.
// A backend shared by several nodes also applies the changes other nodes
// make (within hotzone.ViewLag).
//
// It imports the root package and geo only: no backend.
//
// # Caveats
//
//   - Views hold copies: a Store or Event read from one may be kept, but
//     writing to its slices or pointers writes to what other readers see.
//   - Counts held here are those of live events only; an ended event's
//     counts are the backend's to answer.
//   - A view is only as current as the backend keeps it: it validates
//     nothing and accepts any change it is given.
package view
