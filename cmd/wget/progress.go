package wget

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// The "dot" progress display wget uses when its log is not a terminal
// (progress.c, dot style "default"): a dot per KiB, a space every 10
// dots, 50 dots (50K) a row, each row ended by the percentage, the
// row's rate and the time left.
const (
	dotBytes    = 1024
	dotSpacing  = 10
	dotsInLine  = 50
	rowBytes    = dotBytes * dotsInLine
	rateUnitsBi = 1024.0
)

type dots struct {
	w           io.Writer
	total       int64 // the whole file's length (0: unknown)
	initial     int64 // bytes already there (-c)
	accumulated int64
	rows, dots  int64
	start       time.Time
	lastTimer   time.Duration
	now         func() time.Time
}

func newDots(w io.Writer, initial, total int64, now func() time.Time) *dots {
	d := &dots{w: w, total: total, initial: initial, now: now, start: now()}
	if initial > 0 {
		remainder := initial % rowBytes
		skipped := initial - remainder
		if skipped > 0 {
			k := strconv.FormatInt(skipped/1024, 10)
			width := max(len(k), 6)
			fmt.Fprintf(w, "\n%*s[ skipping %sK ]", 2+width, "", k)
		}
		fmt.Fprintf(w, "\n%6dK", skipped/1024)
		for ; remainder >= dotBytes; remainder -= dotBytes {
			if d.dots%dotSpacing == 0 {
				io.WriteString(w, " ")
			}
			io.WriteString(w, ",")
			d.dots++
		}
		d.accumulated = remainder
		d.rows = skipped / rowBytes
	}
	return d
}

// update accounts n more bytes.
func (d *dots) update(n int64) {
	d.accumulated += n
	for ; d.accumulated >= dotBytes; d.accumulated -= dotBytes {
		if d.dots == 0 {
			fmt.Fprintf(d.w, "\n%6dK", d.rows*rowBytes/1024)
		}
		if d.dots%dotSpacing == 0 {
			io.WriteString(d.w, " ")
		}
		io.WriteString(d.w, ".")
		d.dots++
		if d.dots >= dotsInLine {
			d.rows++
			d.dots = 0
			d.rowStats(d.now().Sub(d.start), false)
		}
	}
}

// finish pads the last row and prints its statistics and the total time.
func (d *dots) finish() {
	if d.dots == 0 {
		fmt.Fprintf(d.w, "\n%6dK", d.rows*rowBytes/1024)
	}
	for i := d.dots; i < dotsInLine; i++ {
		if i%dotSpacing == 0 {
			io.WriteString(d.w, " ")
		}
		io.WriteString(d.w, " ")
	}
	d.rowStats(d.now().Sub(d.start), true)
	io.WriteString(d.w, "\n\n")
}

func (d *dots) rowStats(elapsed time.Duration, last bool) {
	displayed := d.rows*rowBytes + d.dots*dotBytes
	if last {
		displayed += d.accumulated
	}
	if d.total > 0 {
		fmt.Fprintf(d.w, "%3d%%", int(100*float64(displayed)/float64(d.total)))
	}
	thisRow, row := int64(rowBytes), d.rows-1 // the row just completed
	if last {
		thisRow, row = d.dots*dotBytes+d.accumulated, d.rows
	}
	if row == d.initial/rowBytes { // less the part that was there
		thisRow -= d.initial % rowBytes
	}
	rate, unit := calcRate(thisRow, elapsed-d.lastTimer)
	fmt.Fprintf(d.w, " %4.*f%c", rateDecimals(rate), rate, " KMGT"[unit])
	d.lastTimer = elapsed
	secs := elapsed.Seconds()
	if !last {
		if d.total > 0 {
			remaining := d.total - displayed
			sofar := displayed - d.initial
			if sofar > 0 {
				eta := secs * float64(remaining) / float64(sofar)
				if eta < 1<<31-2 {
					fmt.Fprintf(d.w, " %s", etaShort(int(eta+0.5)))
				}
			}
		}
		return
	}
	if secs >= 10 {
		fmt.Fprintf(d.w, "=%s", etaShort(int(secs+0.5)))
	} else {
		fmt.Fprintf(d.w, "=%ss", decimals(secs))
	}
}

func rateDecimals(r float64) int {
	switch {
	case r >= 99.95:
		return 0
	case r >= 9.995:
		return 1
	}
	return 2
}

// calcRate is wget's calc_rate: bytes per second in binary units (0 B,
// 1 K, 2 M, 3 G); a zero interval counts as half the timer's resolution.
func calcRate(bytes int64, d time.Duration) (float64, int) {
	secs := d.Seconds()
	if secs <= 0 {
		secs = 1e-6 / 2
	}
	r := float64(bytes) / secs
	unit := 0
	for unit < 3 && r >= rateUnitsBi {
		r /= rateUnitsBi
		unit++
	}
	return r, unit
}

// rateString is retr_rate: "3.15 MB/s".
func rateString(bytes int64, d time.Duration) string {
	r, unit := calcRate(bytes, d)
	return fmt.Sprintf("%.*f %s", rateDecimals(r), r, []string{"B/s", "KB/s", "MB/s", "GB/s"}[unit])
}

// etaShort is eta_to_human_short, condensed.
func etaShort(secs int) string {
	switch {
	case secs < 100:
		return fmt.Sprintf("%ds", secs)
	case secs < 100*60:
		return fmt.Sprintf("%dm%ds", secs/60, secs%60)
	case secs < 48*3600:
		return fmt.Sprintf("%dh%dm", secs/3600, (secs/60)%60)
	case secs < 100*86400:
		return fmt.Sprintf("%dd%dh", secs/86400, (secs/3600)%24)
	}
	return fmt.Sprintf("%dd", secs/86400)
}

// decimals is print_decimals: few digits for short times.
func decimals(n float64) string {
	switch a := max(n, -n); {
	case a >= 9.95:
		return fmt.Sprintf("%.0f", n)
	case a >= .95:
		return fmt.Sprintf("%.1f", n)
	case a >= .001:
		return fmt.Sprintf("%.1g", n)
	case a >= .0005:
		return fmt.Sprintf("%.3f", n)
	}
	return "0"
}

// humanSize is human_readable(n, 10, 1): "195K", "9.8K", "1.2M"; no
// suffix under 1024.
func humanSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	for i, p := range "KMGTPE" {
		if n/1024 < 1024 || i == 5 {
			v := float64(n) / 1024
			d := 0
			if v < 10 {
				d = 1
			}
			return fmt.Sprintf("%.*f%c", d, v, p)
		}
		n /= 1024
	}
	return ""
}
