package transport

import (
	"fmt"
	"testing"
)

func TestDatagramQueueBoundsAndOrder(t *testing.T) {
	var q DatagramQueue
	limit := 10 * (100 + DatagramOverhead)
	pushed := 0
	for i := 0; i < 50; i++ {
		if q.Push(Datagram{Data: make([]byte, 100)}, limit) {
			pushed++
		}
	}
	if pushed != 10 || q.Drops() != 40 {
		t.Fatalf("pushed %d, dropped %d; want 10 and 40", pushed, q.Drops())
	}
	if q.Bytes() != 1000 {
		t.Errorf("Bytes %d, want 1000", q.Bytes())
	}
	// An empty queue takes one datagram even past the limit (Linux admits
	// one while under the limit).
	var big DatagramQueue
	if !big.Push(Datagram{Data: make([]byte, 1<<16)}, 100) {
		t.Error("an empty queue refused a datagram larger than the limit")
	}
	if big.Push(Datagram{Data: []byte{1}}, 100) {
		t.Error("a full queue took another datagram")
	}
}

func TestDatagramQueueFIFOAcrossGrowth(t *testing.T) {
	var q DatagramQueue
	next := 0
	for round := 0; round < 20; round++ {
		for i := 0; i < 7; i++ {
			q.Push(Datagram{Data: []byte(fmt.Sprint(round*7 + i))}, 1<<30)
		}
		for i := 0; i < 5; i++ {
			if d, ok := q.Pop(true); !ok || string(d.Data) != fmt.Sprint(next) {
				t.Fatalf("peek: %q %v, want %d", d.Data, ok, next)
			}
			d, ok := q.Pop(false)
			if !ok || string(d.Data) != fmt.Sprint(next) {
				t.Fatalf("pop: %q %v, want %d", d.Data, ok, next)
			}
			next++
		}
	}
	for q.Len() > 0 {
		d, _ := q.Pop(false)
		if string(d.Data) != fmt.Sprint(next) {
			t.Fatalf("drain: %q, want %d", d.Data, next)
		}
		next++
	}
	if next != 140 || q.Bytes() != 0 {
		t.Errorf("read %d datagrams, %d bytes left", next, q.Bytes())
	}
	if _, ok := q.Pop(false); ok {
		t.Error("pop from an empty queue succeeded")
	}
}

func TestScatterGather(t *testing.T) {
	a, b, c := make([]byte, 2), make([]byte, 3), make([]byte, 4)
	if n := CopyOut([][]byte{a, b, c}, []byte("hello")); n != 5 || string(a)+string(b) != "hello" {
		t.Errorf("CopyOut %d %q %q", n, a, b)
	}
	src := [][]byte{[]byte("ab"), nil, []byte("cde")}
	dst := make([]byte, TotalLen(src))
	if n := Gather(dst, src); n != 5 || string(dst) != "abcde" {
		t.Errorf("Gather %d %q", n, dst)
	}
}
