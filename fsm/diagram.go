package fsm

import (
	"fmt"
	"strings"
)

// Mermaid returns the table's moves as a Mermaid state diagram, for the
// docs. Stays and rejections are left out: they change no state.
func Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s\n", StateCreated)
	for _, s := range States() {
		for _, e := range Events() {
			o := Step(s, e)
			if o.Kind != KindMove {
				continue
			}
			to := o.To.String()
			if o.To == StateRemoved {
				to = "[*]"
			}
			fmt.Fprintf(&b, "    %s --> %s: %s\n", s, to, e)
		}
	}
	return b.String()
}
