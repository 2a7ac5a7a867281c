package guard

// Detectors for personal data in text. Each one looks at the text from a
// position and says whether a match starts there, how long it is, and
// whether it could already decide: a detector that would need to see more
// text says so, and the streaming redactor holds the text back from that
// position until it can. A decided answer never changes when more text
// arrives; that is what makes redacting a stream in pieces give exactly the
// text redacting it whole would (the differential test checks it).
//
// Matches are bounded (an email's local part at most 64 bytes and domain at
// most 253, a number at most 19 digits in 40 bytes), so the held tail is too.

// PII kinds, as they appear in placeholders, logs and configuration.
const (
	KindEmail = "email"
	KindPhone = "phone"
	KindCard  = "card"
)

// Placeholders that replace a redacted span.
var placeholders = map[string]string{
	KindEmail: "[REDACTED_EMAIL]",
	KindPhone: "[REDACTED_PHONE]",
	KindCard:  "[REDACTED_CARD]",
}

const (
	maxLocal     = 64  // RFC 5321 local-part limit
	maxDomain    = 253 // RFC 1035 name limit
	maxLabel     = 63
	maxDigits    = 19 // the longest card number
	maxNumberLen = 40 // digits plus separators, parentheses and a plus
)

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// isLocal: the characters of an email's local part that people write
// (RFC 5322 allows more, which nobody uses in prose).
func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomain(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// text is what detectors read: a streamed piece (string) or the held tail
// ([]byte), without converting either.
type text interface{ ~string | ~[]byte }

// result of a detector at one position.
type result struct {
	n       int    // match length in bytes; 0: no match
	kind    string // the match's kind
	decided bool   // false: more text is needed to know
}

var undecided = result{}
var noMatch = result{decided: true}

// email matches local@domain starting at the start of a run of local-part
// characters. prev is the byte before p (0 at the start of the text).
func email[T text](t T, p int, prev byte, final bool) result {
	if !isLocal(t[p]) || isLocal(prev) {
		return noMatch
	}
	i := p
	for i < len(t) && isLocal(t[i]) {
		if i-p == maxLocal {
			return noMatch // longer than any local part, however it goes on
		}
		i++
	}
	if i == len(t) {
		if final {
			return noMatch
		}
		return undecided
	}
	if t[i] != '@' || !hasAlnum(t[p:i]) {
		return noMatch
	}
	start := i + 1
	j := start
	for j < len(t) && isDomain(t[j]) {
		if j-start > maxDomain+1 { // one trailing dot or dash may follow a full-length name
			return noMatch
		}
		j++
	}
	if j == len(t) && !final {
		return undecided
	}
	end := j
	for end > start && (t[end-1] == '.' || t[end-1] == '-') {
		end-- // sentence punctuation, not part of the name
	}
	if !validDomain(t[start:end]) {
		return noMatch
	}
	return result{n: end - p, kind: KindEmail, decided: true}
}

func hasAlnum[T text](b T) bool {
	for i := 0; i < len(b); i++ {
		if isAlnum(b[i]) {
			return true
		}
	}
	return false
}

// validDomain wants at least two labels of letters, digits and inner dashes,
// and an alphabetic top-level label of two letters or more.
func validDomain[T text](d T) bool {
	if len(d) == 0 || len(d) > maxDomain {
		return false
	}
	labels, start := 0, 0
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			continue
		}
		l := d[start:i]
		if len(l) == 0 || len(l) > maxLabel || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		labels++
		if i == len(d) { // the top-level label
			if len(l) < 2 {
				return false
			}
			for k := 0; k < len(l); k++ {
				if !isAlpha(l[k]) {
					return false
				}
			}
		}
		start = i + 1
	}
	return labels >= 2
}

// number matches phone numbers and card numbers: a run of digit groups
// joined by single spaces, dashes or dots, with an optional leading plus and
// parenthesized groups, "+1 (555) 123-4567" or "4111 1111 1111 1111". Of
// the run's prefixes that end after a group and are not glued to a letter or
// digit, the longest that is a card or phone number matches: "555-123-4567
// 24 hours" redacts the phone number and keeps the "24".
func number[T text](t T, p int, prev byte, final bool) result {
	c := t[p]
	if isAlnum(prev) || !(isDigit(c) || c == '+' || c == '(') {
		return noMatch
	}
	var (
		digits [maxDigits]byte
		cands  [maxDigits]numberRun // one per group read; a group has a digit
		nc     int
		cur    numberRun
	)
	i := p
	if c == '+' {
		cur.plus = true
		i++
	}
	// Each turn reads one group, then looks at what follows it: one
	// separator and another group (or, after a closing parenthesis, another
	// group directly), or the end of the run.
	for {
		if i == len(t) {
			if !final {
				return undecided
			}
			break
		}
		glen := 0
		switch {
		case t[i] == '(':
			j := i + 1
			for j < len(t) && isDigit(t[j]) && j-i <= 4 {
				j++
			}
			if j == len(t) && !final {
				return undecided
			}
			if j == i+1 || j == len(t) || t[j] != ')' {
				goto done // not a whole group: the run ended before "("
			}
			glen, cur.paren = j-i-1, true
			if cur.nd+glen > maxDigits {
				goto done
			}
			for k := i + 1; k < j; k++ {
				digits[cur.nd] = t[k]
				cur.nd++
			}
			i = j + 1
		case isDigit(t[i]):
			j := i
			for j < len(t) && isDigit(t[j]) {
				j++
				if cur.nd+j-i > maxDigits {
					goto done // too many digits for anything we redact
				}
			}
			if j == len(t) && !final {
				return undecided
			}
			glen = j - i
			for k := i; k < j; k++ {
				digits[cur.nd] = t[k]
				cur.nd++
			}
			i = j
		default:
			goto done // a lone "+", or a separator before something else
		}
		if i-p > maxNumberLen {
			goto done
		}
		cur.groups++
		cur.lastLen = glen
		if cur.groups == 1 {
			cur.firstLen = glen
		}
		cur.end = i
		cands[nc] = cur
		nc++
		if i == len(t) {
			if !final {
				return undecided
			}
			break
		}
		if s := t[i]; s == ' ' || s == '-' || s == '.' {
			if i+1 == len(t) {
				if !final {
					return undecided
				}
				break
			}
			if n := t[i+1]; isDigit(n) || n == '(' {
				cur.seps |= sepBit(s)
				i++
				continue
			}
			break
		}
		if t[i-1] == ')' && (isDigit(t[i]) || t[i] == '(') {
			continue
		}
		break
	}
done:
	for k := nc - 1; k >= 0; k-- {
		r := &cands[k]
		if r.end < len(t) && isAlnum(t[r.end]) {
			continue // glued to a word or to more digits
		}
		ds := digits[:r.nd]
		switch {
		case !r.plus && !r.paren && r.nd >= 13 && r.seps&4 == 0 && luhn(ds):
			return result{n: r.end - p, kind: KindCard, decided: true}
		case isPhone(ds, r):
			return result{n: r.end - p, kind: KindPhone, decided: true}
		}
	}
	return noMatch
}

// numberRun describes a run of digit groups read so far.
type numberRun struct {
	end, nd, groups, firstLen, lastLen int
	plus, paren                        bool
	seps                               uint8 // separators used: 1 space, 2 dash, 4 dot
}

func sepBit(s byte) uint8 {
	switch s {
	case ' ':
		return 1
	case '-':
		return 2
	}
	return 4
}

// isPhone accepts international numbers written with a plus (8 to 15
// digits, as E.164 allows), and national ten-digit numbers (eleven with a
// leading 1 or 0 trunk prefix). Written in groups, a national number must
// end in a group of three or more digits, which tells "555 123 4567" from a
// date and time such as "2024-01-15 10"; dotted quads are IP addresses.
func isPhone(ds []byte, r *numberRun) bool {
	nd := len(ds)
	if r.plus {
		return nd >= 8 && nd <= 15
	}
	if nd != 10 && !(nd == 11 && (ds[0] == '1' || ds[0] == '0')) {
		return false
	}
	if r.groups == 1 {
		return true
	}
	if r.lastLen < 3 {
		return false
	}
	if r.seps == 4 && r.groups == 4 {
		return false // 192.168.1.100
	}
	return r.firstLen <= 4
}

// luhn is the card-number checksum: it rules out nine in ten random digit
// strings of a card's length.
func luhn(ds []byte) bool {
	sum := 0
	double := false
	for i := len(ds) - 1; i >= 0; i-- {
		d := int(ds[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
