package neighbor

import (
	"testing"
	"testing/synctest"
)

// copyingRecorder implements PromptCopier: prompts become their negation.
type copyingRecorder struct{ *recorder }

func (copyingRecorder) CopyPrompt(p int) int { return -p }

// TestPromptCopier: a handler with CopyPrompt gets, in SendSolicit, the
// copy made under the cache's lock, not the queued packet, while Resolved
// still hands back the queued packets themselves.
func TestPromptCopier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		c := New[int](Config{}, copyingRecorder{r})
		defer c.Close()
		c.Resolve(addrA, 7)
		if _, err := c.HandleAdvertisement(addrA, macA, Solicited|Override); err != nil {
			t.Fatal(err)
		}
		ev := r.events()
		if len(ev) != 2 || ev[0].kind != "solicit" || ev[0].prompt != -7 {
			t.Fatalf("events %+v, want a solicit with the copied prompt -7 first", ev)
		}
		if ev[1].kind != "resolved" || len(ev[1].pkts) != 1 || ev[1].pkts[0] != 7 {
			t.Fatalf("resolved %+v, want the queued packet 7", ev[1])
		}
	})
}
