package seal

import (
	"bytes"
	"errors"
	"testing"
)

type record struct{ Secret string }

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal([]byte("brand\x00apns"), record{"p8"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("p8")) {
		t.Fatalf("sealed record shows its plain text: %q", sealed)
	}
	var got record
	if err := b.Open([]byte("brand\x00apns"), sealed, &got); err != nil || got.Secret != "p8" {
		t.Fatalf("Open = %+v, %v; want p8", got, err)
	}
	if err := b.Open([]byte("other\x00apns"), sealed, &got); err == nil {
		t.Fatal("a record opened under another key's additional data")
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if err := other.Open([]byte("brand\x00apns"), sealed, &got); err == nil {
		t.Fatal("a record opened under another server key")
	}
	if err := b.Open(nil, sealed[:3], &got); err == nil {
		t.Fatal("a truncated record opened")
	}
}

func TestNoKey(t *testing.T) {
	b, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Seal(nil, record{}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Seal without a key = %v, want ErrNoKey", err)
	}
	if err := b.Open(nil, []byte("x"), &record{}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Open without a key = %v, want ErrNoKey", err)
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("New took a 5-byte key")
	}
}
