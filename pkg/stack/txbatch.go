package stack

// TxBatch gathers the frames of several WritePacket calls made one after
// another on one goroutine, so that those for the same NIC reach its link
// endpoint in one WritePackets call: a TAP with offloads then hands a run
// of one flow's segments to the kernel as one GSO frame (pkg/link/tap), as
// Linux's xmit_more lets a driver batch its doorbell. Set it in
// WriteOptions.Batch; call Flush when done, before the frames are due.
//
// Only frames whose next hop is resolved join the batch: a packet that
// waits for ARP or NDP leaves without it (another goroutine may send it
// when the answer comes). A frame for another NIC, a fragmented datagram
// or a full batch flushes what is held first, so the frames of one batch
// leave in the order they were written.
//
// A TxBatch is used by one goroutine at a time; its zero value is ready.
// Errors from the endpoint are counted (TxErrors) but not returned, as a
// transport that sends segments has no use for them.
type TxBatch struct {
	nic    *NIC
	frames [][]byte
}

// maxBatch bounds the frames a batch holds before it writes them.
const maxBatch = 64

// add queues frame, which n encoded, flushing first if it is for another
// NIC or the batch is full.
func (b *TxBatch) add(n *NIC, frame []byte) {
	if b.nic != n || len(b.frames) == maxBatch {
		b.Flush()
		b.nic = n
	}
	b.frames = append(b.frames, frame)
}

// Flush writes the frames held, in order, and empties the batch.
func (b *TxBatch) Flush() {
	n, frames := b.nic, b.frames
	if len(frames) == 0 {
		return
	}
	sent, err := n.ep.WritePackets(frames)
	for _, f := range frames[:sent] {
		n.stats.TxPackets.Add(1)
		n.stats.TxBytes.Add(uint64(len(f)))
	}
	if err != nil {
		n.stats.TxErrors.Add(uint64(len(frames) - sent))
	}
	clear(frames) // the frames' memory goes back to the collector
	b.frames, b.nic = frames[:0], nil
}
