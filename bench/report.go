package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Target is one of the goals for this machine, judged.
type Target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Reached  bool   `json:"reached"`
}

// targets judges res against the goals. A goal whose measurement failed
// is not reached.
func targets(res *Results) []Target {
	qemu, bare := res.Cycle[PathHyperdQEMU], res.Cycle[PathBareQEMU]
	return []Target{
		{
			Name: "hyperd+qemu cycle / bare QEMU cycle (p50)", Want: "≤ 1.15",
			Measured: fmt.Sprintf("%.2f (%s vs %s)", res.HyperdOverBare, dur(qemu.P50), dur(bare.P50)),
			Reached:  qemu.N > 0 && bare.N > 0 && res.HyperdOverBare <= 1.15,
		},
		{
			Name: "libvirt direct cycle / hyperd+qemu cycle (p50)", Want: "≥ 15",
			Measured: fmt.Sprintf("%.1f", res.LibvirtOverHyperd),
			Reached:  res.Cycle[PathLibvirt].N > 0 && res.LibvirtOverHyperd >= 15,
		},
		{
			Name: "plugin Status p50 (paused VM)", Want: "< 200µs",
			Measured: dur(res.Status.PluginPaused.P50),
			Reached:  res.Status.PluginPaused.N > 0 && res.Status.PluginPaused.P50 < 200*time.Microsecond,
		},
		{
			Name: "plugin Status p50 (created VM: the boundary without QMP)", Want: "< 200µs",
			Measured: dur(res.Status.PluginCreated.P50),
			Reached:  res.Status.PluginCreated.N > 0 && res.Status.PluginCreated.P50 < 200*time.Microsecond,
		},
		{
			Name: "start-up, 3 drivers + 5 broken (p50)", Want: "< 300ms",
			Measured: dur(res.Startup.Time.P50),
			Reached:  res.Startup.Time.N > 0 && res.Startup.Time.P50 < 300*time.Millisecond,
		},
		{
			Name: "hyperd memory per idle VM", Want: "< 256 KiB",
			Measured: fmt.Sprintf("%.0f KiB", res.Density.PerVMKiB["hyperd"]),
			Reached:  res.Density.VMs > 0 && res.Density.PerVMKiB["hyperd"] < 256,
		},
		{
			Name: "exit (SIGTERM, SHUTDOWN) to stored, p99", Want: "< 50ms",
			Measured: dur(res.Density.ExitToAPI.P99),
			Reached:  res.Density.ExitToAPI.N > 0 && res.Density.ExitToAPI.P99 < 50*time.Millisecond,
		},
		{
			Name: "boot to guest, hyperd / by hand (p50)", Want: "≤ 1.05",
			Measured: fmt.Sprintf("%.3f", res.Boot.Ratio),
			Reached:  res.Boot.Hyperd.N > 0 && res.Boot.Ratio <= 1.05,
		},
	}
}

// WriteMarkdown prints res as three markdown tables: the four paths side
// by side, the other measurements, and the targets.
func WriteMarkdown(w io.Writer, res *Results) error {
	var b strings.Builder
	paths := []Path{PathHyperdQEMU, PathHyperdLibvirt, PathBareQEMU, PathLibvirt}

	b.WriteString("| control plane (p50 / p99) |")
	for _, p := range paths {
		fmt.Fprintf(&b, " %s |", p)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(paths)) + "\n")
	b.WriteString("| create paused, kill, remove: one at a time |")
	for _, p := range paths {
		fmt.Fprintf(&b, " %s |", res.Cycle[p])
	}
	b.WriteString("\n")
	for i, k := range res.Counts.InFlight {
		fmt.Fprintf(&b, "| %d in flight: VMs/s (cycle p50 / p99) |", k)
		for _, p := range paths {
			ts := res.InFlight[p]
			if i >= len(ts) {
				b.WriteString(" n/a |")
				continue
			}
			t := ts[i]
			fmt.Fprintf(&b, " %.1f VMs/s, %d VMs (%s / %s) |", t.VMsPerSec, t.VMs, dur(t.Cycle.P50), dur(t.Cycle.P99))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nRatios of medians: hyperd+qemu / bare QEMU = %.2f; libvirt direct / hyperd+qemu = %.1f; "+
		"hyperd+libvirt / libvirt direct = %.2f.\n\n",
		res.HyperdOverBare, res.LibvirtOverHyperd,
		ratio(res.Cycle[PathHyperdLibvirt].P50, res.Cycle[PathLibvirt].P50))

	s := res.Status
	d := res.Density
	b.WriteString("| measurement | result |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| hyperd+qemu cycle by call, p50 / p99 | run %s; kill %s; remove %s |\n",
		res.Steps["run"], res.Steps["kill"], res.Steps["remove"])
	fmt.Fprintf(&b, "| cycle, bare QEMU polling QMP every 20 ms as the qemu driver does, p50 / p99 | %s |\n",
		res.Cycle[PathBarePoll20])
	fmt.Fprintf(&b, "| 4 KiB write + fsync in hyperd's state directory (each bbolt commit pays one or more), p50 / p99 | %s |\n",
		res.Fsync)
	fmt.Fprintf(&b, "| qemu driver Status, paused VM (QMP query-status): plugin vs in process, p50 / p99 | %s vs %s |\n",
		s.PluginPaused, s.InProcessPaused)
	fmt.Fprintf(&b, "| qemu driver Status, created VM (no QMP): plugin vs in process, p50 / p99 | %s vs %s |\n",
		s.PluginCreated, s.InProcessCreated)
	fmt.Fprintf(&b, "| plugin boundary cost, p50 (paused; created) | %s; %s |\n",
		dur(s.PluginPaused.P50-s.InProcessPaused.P50), dur(s.PluginCreated.P50-s.InProcessCreated.P50))
	fmt.Fprintf(&b, "| hyperd start-up to API answering, 3 drivers + 5 broken binaries, p50 / p99 | %s |\n",
		res.Startup.Time)
	fmt.Fprintf(&b, "| same with the 3 drivers only, p50 / p99 | %s |\n", res.Startup.GoodOnly)
	fmt.Fprintf(&b, "| drivers as listed | %s |\n", listDrivers(res.Startup.Drivers))
	fmt.Fprintf(&b, "| memory per paused VM, %d VMs under one hyperd | %s |\n", d.VMs, perVM(d))
	fmt.Fprintf(&b, "| paused QEMU's own RSS, median | %d KiB |\n", d.QEMUKiB)
	fmt.Fprintf(&b, "| QEMU SIGTERM (SHUTDOWN host-signal) to API showing stopped, p50 / p99 | %s |\n", d.ExitToAPI)
	fmt.Fprintf(&b, "| same, to the record's updated_at stamp (before the bbolt commit), p50 / p99 | %s |\n", d.ExitToStamp)
	fmt.Fprintf(&b, "| boot to guest ready line: hyperd run vs same QEMU by hand, p50 / p99 | %s vs %s; ratio %.3f |\n",
		res.Boot.Hyperd, res.Boot.ByHand, res.Boot.Ratio)

	b.WriteString("\n| target | want | measured | reached |\n| --- | --- | --- | --- |\n")
	for _, t := range res.Targets {
		yes := "no"
		if t.Reached {
			yes = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, yes)
	}
	m := res.Machine
	fmt.Fprintf(&b, "\nMachine: %d CPUs, %s, %s, accel %s; load average %s before, %s after; took %s.\n",
		m.CPUs, m.CPUModel, m.QEMU, m.Accel, m.LoadBefore, m.LoadAfter, res.Took.Round(time.Second))
	if len(res.Errors) > 0 {
		b.WriteString("\nFailed sections:\n")
		for name, e := range res.Errors {
			fmt.Fprintf(&b, "- %s: %s\n", name, e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// perVM formats the per-VM memory of each process, hyperd first.
func perVM(d DensityResult) string {
	if d.VMs == 0 {
		return "n/a"
	}
	names := make([]string, 0, len(d.PerVMKiB))
	for n := range d.PerVMKiB {
		if n != "hyperd" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	parts := []string{fmt.Sprintf("hyperd %.0f KiB (%d → %d KiB)",
		d.PerVMKiB["hyperd"], d.IdleKiB["hyperd"], d.LoadedKiB["hyperd"])}
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f KiB (%d → %d KiB)", n, d.PerVMKiB[n], d.IdleKiB[n], d.LoadedKiB[n]))
	}
	return strings.Join(parts, "; ")
}

// listDrivers formats what the start-up's hyperd listed, one driver
// after another, reasons cut short.
func listDrivers(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		s := m[n]
		if len(s) > 60 {
			s = s[:60] + "…"
		}
		parts = append(parts, n+": "+strings.ReplaceAll(s, "|", "/"))
	}
	return strings.Join(parts, "; ")
}
