package main

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// maxMemoryMiB keeps a memory size in bytes within a uint64, since drivers
// hand it to hypervisors in bytes or KiB.
const maxMemoryMiB = 1<<44 - 1

// maxFracDigits bounds the decimals of a size such as 1.5G. Nine digits
// keep the arithmetic within a uint64 and are more than any real size uses.
const maxFracDigits = 9

// memoryUnits are binary, as QEMU's -m reads them: 1G is 1024 MiB.
var memoryUnits = map[string]uint64{
	"": 1, "m": 1, "mb": 1, "mib": 1,
	"g": 1 << 10, "gb": 1 << 10, "gib": 1 << 10,
	"t": 1 << 20, "tb": 1 << 20, "tib": 1 << 20,
}

// parseMemoryMiB reads a memory size as a whole number of MiB: a plain
// number is MiB, and M, G, T (case-insensitive, optionally followed by B or
// iB) are binary units. Decimals are allowed when the result is whole
// MiB, so 1.5G is 1536. Zero, negative and overlarge sizes are errors.
func parseMemoryMiB(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty size")
	}
	if s[0] == '-' {
		return 0, errors.New("must be more than zero")
	}

	num, unit := s, ""
	if i := strings.IndexFunc(s, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.'
	}); i >= 0 {
		num, unit = s[:i], s[i:]
	}
	mult, ok := memoryUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("not a size: want MiB or a number with M, G or T, like 512M or 2G")
	}

	whole, frac, _ := strings.Cut(num, ".")
	frac = strings.TrimRight(frac, "0")
	if whole == "" && frac == "" || strings.Contains(frac, ".") || strings.HasSuffix(num, ".") {
		return 0, fmt.Errorf("not a size: want MiB or a number with M, G or T, like 512M or 2G")
	}
	if whole == "" {
		whole = "0"
	}

	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		// Only digits reach here, so the one failure is a number too big.
		return 0, errTooLarge
	}
	hi, mib := bits.Mul64(w, mult)
	if hi != 0 {
		return 0, errTooLarge
	}

	if frac != "" {
		if len(frac) > maxFracDigits {
			return 0, fmt.Errorf("too many decimals in %q", num)
		}
		f, err := strconv.ParseUint(frac, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("not a size: %q", num)
		}
		scaled, div := f*mult, pow10(len(frac))
		if scaled%div != 0 {
			return 0, errors.New("not a whole number of MiB")
		}
		var carry uint64
		mib, carry = bits.Add64(mib, scaled/div, 0)
		if carry != 0 {
			return 0, errTooLarge
		}
	}

	switch {
	case mib == 0:
		return 0, errors.New("must be more than zero")
	case mib > maxMemoryMiB:
		return 0, errTooLarge
	}
	return mib, nil
}

var errTooLarge = errors.New("too large: the most is 16 EiB less 1 MiB")

func pow10(n int) uint64 {
	p := uint64(1)
	for range n {
		p *= 10
	}
	return p
}

// formatMiB writes a size in the largest binary unit that divides it.
func formatMiB(mib uint64) string {
	switch {
	case mib != 0 && mib%(1<<20) == 0:
		return strconv.FormatUint(mib>>20, 10) + "T"
	case mib != 0 && mib%(1<<10) == 0:
		return strconv.FormatUint(mib>>10, 10) + "G"
	}
	return strconv.FormatUint(mib, 10) + "M"
}

// sizeValue is a pflag.Value for a memory size in MiB.
type sizeValue uint64

func (v *sizeValue) Set(s string) error {
	mib, err := parseMemoryMiB(s)
	if err != nil {
		return err
	}
	*v = sizeValue(mib)
	return nil
}

func (v *sizeValue) String() string { return formatMiB(uint64(*v)) }
func (v *sizeValue) Type() string   { return "size" }
