package testguest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestBuildWritesGuest(t *testing.T) {
	p := Build(t)
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	if again := Build(t); again != p {
		t.Fatalf("second Build = %+v, want the first %+v", again, p)
	}
}

func TestInitrdContents(t *testing.T) {
	p := Build(t)
	tests := []struct {
		name       string
		initrd     string
		wantReady  string
		wantButton string
	}{
		{"normal", p.Initrd, `variant=`, "../poweroff.sh"},
		{"stubborn", p.StubbornInitrd, `variant=stubborn`, "../ignore.sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := readCPIO(t, tt.initrd)

			init, ok := files["init"]
			if !ok {
				t.Fatal("initrd has no /init")
			}
			if !strings.Contains(init, "\n"+tt.wantReady+"\n") {
				t.Errorf("/init does not set %q", tt.wantReady)
			}
			if !strings.Contains(init, ReadyLine) {
				t.Errorf("/init never prints %q", ReadyLine)
			}
			if _, ok := files["bin/busybox"]; !ok {
				t.Error("initrd has no /bin/busybox")
			}
			if got := files["etc/acpi/PWRF/00000080"]; got != tt.wantButton {
				t.Errorf("power button handler -> %q, want %q", got, tt.wantButton)
			}

			order := strings.Fields(files["lib/modules/load-order"])
			for _, mod := range []string{"button", "evdev", "virtio_blk", "virtio_console"} {
				if !contains(order, mod) {
					t.Errorf("load-order %v lacks %s", order, mod)
					continue
				}
				if _, ok := files["lib/modules/"+mod+".ko"]; !ok {
					t.Errorf("load-order names %s but initrd has no %s.ko", mod, mod)
				}
			}
			if before(order, "virtio_blk", "virtio_ring") {
				t.Errorf("load-order %v loads virtio_blk before its dependency virtio_ring", order)
			}
		})
	}
}

func TestEnvDirMustBeComplete(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvDir, dir)

	if _, skip, err := build(); err == nil || skip != "" {
		t.Fatalf("build with incomplete %s = skip %q, err %v; want an error", EnvDir, skip, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// before reports whether a comes before b in list, both present.
func before(list []string, a, b string) bool {
	ia, ib := -1, -1
	for i, x := range list {
		switch x {
		case a:
			ia = i
		case b:
			ib = i
		}
	}
	return ia >= 0 && ib >= 0 && ia < ib
}

// readCPIO returns every entry of a gzip'd newc cpio archive, by name,
// with its data (a symlink's data is its target).
func readCPIO(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	files, err := parseNewc(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return files
}

// parseNewc reads the "070701" cpio format: a 110-byte header of hex
// fields, the name, then the data, name and data each padded to 4 bytes.
func parseNewc(b []byte) (map[string]string, error) {
	const hdr = 110
	pad := func(n int) int { return (n + 3) &^ 3 }
	files := map[string]string{}
	for off := 0; ; {
		if off+hdr > len(b) || !bytes.HasPrefix(b[off:], []byte("070701")) {
			return nil, fmt.Errorf("cpio: bad header at offset %d", off)
		}
		field := func(i int) (int, error) {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			return int(v), err
		}
		size, err := field(6)
		if err != nil {
			return nil, fmt.Errorf("cpio: file size at offset %d: %w", off, err)
		}
		nameSize, err := field(11)
		if err != nil {
			return nil, fmt.Errorf("cpio: name size at offset %d: %w", off, err)
		}
		nameEnd := off + hdr + nameSize
		dataStart := off + pad(hdr+nameSize)
		if nameSize < 1 || dataStart+size > len(b) {
			return nil, fmt.Errorf("cpio: entry at offset %d overruns the archive", off)
		}
		name := string(b[off+hdr : nameEnd-1])
		if name == "TRAILER!!!" {
			return files, nil
		}
		files[name] = string(b[dataStart : dataStart+size])
		off = dataStart + pad(size)
	}
}
