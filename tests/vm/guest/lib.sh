# SPDX-License-Identifier: LGPL-2.1-or-later
# Sourced by guest scenarios: TAP-style checks, skipping, and small sysfs/JSON helpers (busybox sh).
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
nok() { fail=$((fail + 1)); echo "not ok - $*"; }
chk() { _d=$1; shift; if "$@"; then ok "$_d"; else nok "$_d"; fi; }
note() { echo "# $*"; }
# skip the whole scenario (the host counts exit status 77 as skipped)
skip_all() { echo "# SKIP $*"; exit 77; }
need_vgpuctl() { command -v vgpuctl >/dev/null 2>&1 || skip_all "no vgpuctl binary"; }
finish() { note "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }

# attribute content on one line, or <absent>
rd() { if [ -e "$1" ]; then tr '\n' ' ' <"$1" | sed 's/ *$//'; else echo "<absent>"; fi; }
new_uuid() { cat /proc/sys/kernel/random/uuid; }
# basename of a symlink's target, or <none>
link_name() { if [ -e "$1" ]; then basename "$(readlink "$1")"; else echo "<none>"; fi; }

# JSON on stdin -> the elements of array $1 (the outermost array when $1 is empty), one per line.
# Blanks around punctuation are dropped, inside strings too: fine for keys, names, UUIDs, numbers.
json_items() {
	{ tr -d '\n'; echo; } | sed -E 's/[[:space:]]*([][{}:,])[[:space:]]*/\1/g' | awk -v k="$1" '{
		s = $0; i = k == "" ? index(s, "[") : index(s, "\"" k "\":[")
		if (!i) exit
		s = substr(s, i + (k == "" ? 1 : length(k) + 4)); o = ""; d = 0; q = 0
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			if (q) { if (c == "\\") { o = o c; c = substr(s, ++i, 1) } else if (c == "\"") q = 0 }
			else if (c == "\"") q = 1
			else if (c == "{" || c == "[") d++
			else if ((c == "}" || c == "]") && d-- == 0) break
			else if (c == "," && d == 0) { print o; o = ""; continue }
			o = o c
		}
		if (o != "") print o
	}'
}
# first value of key $1 in the line(s) on stdin, quotes removed
jfield() { grep -oE "\"$1\":(\"[^\"]*\"|[^],}]*)" | head -n1 | sed 's/^"[^"]*"://' | tr -d '"'; }
