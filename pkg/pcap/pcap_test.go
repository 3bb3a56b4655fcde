package pcap

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, 100)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 123456789)
	small := []byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte{0xab}, 150)
	if err := w.WriteFrame(ts, small); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(ts.Add(time.Second), big); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType != LinkTypeEthernet {
		t.Fatalf("link type %d", r.LinkType)
	}
	rec, err := r.Next()
	if err != nil || !bytes.Equal(rec.Data, small) || !rec.Time.Equal(ts) || rec.OrigLen != 4 {
		t.Fatalf("first record %+v, %v", rec, err)
	}
	rec, err = r.Next()
	if err != nil || len(rec.Data) != 100 || rec.OrigLen != 150 {
		t.Fatalf("second record: %d captured of %d, %v; want 100 of 150", len(rec.Data), rec.OrigLen, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestReaderRejectsGarbage(t *testing.T) {
	if _, err := NewReader(bytes.NewReader([]byte("not a pcap file at all!!"))); !errors.Is(err, ErrFormat) {
		t.Fatalf("garbage: %v", err)
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, 0)
	_ = w.WriteFrame(time.Now(), []byte{1, 2, 3})
	cut := buf.Bytes()[:buf.Len()-1]
	r, err := NewReader(bytes.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrFormat) {
		t.Fatalf("truncated record: %v", err)
	}
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, 0)
	_ = w.WriteFrame(time.Unix(1, 2), []byte{1, 2, 3})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			if _, err := r.Next(); err != nil {
				return
			}
		}
	})
}
