package httpfwd

import (
	"bufio"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// Parse errors. A server answers errMalformed with 400, errTooLarge with 431, errVersion with
// 505 and errTransferEncoding with 501.
var (
	errMalformed        = errors.New("httpfwd: malformed HTTP message")
	errTooLarge         = errors.New("httpfwd: message head too large")
	errVersion          = errors.New("httpfwd: unsupported HTTP version")
	errTransferEncoding = errors.New("httpfwd: unsupported transfer encoding")
)

// readHead reads one message head (start line and header fields, up to and including the empty
// line) from br into buf[:0] and returns it. Empty lines before the start line are skipped (RFC
// 9112 2.2). A head longer than max bytes is errTooLarge; a connection that ends before any byte
// of it gives io.EOF, one that ends within it io.ErrUnexpectedEOF.
func readHead(br *bufio.Reader, max int, buf []byte) ([]byte, error) {
	head := buf[:0]
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		if len(head)+len(frag) > max {
			return head, errTooLarge
		}
		head = append(head, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(head) == 0 {
				return head, err
			}
			return head, errUnexpectedEOF(err)
		}
		line := head[lineStart:]
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			if lineStart == 0 {
				// An empty line before the start line: skip it (not part of the head).
				head = head[:0]
				continue
			}
			return head, nil
		}
		lineStart = len(head)
	}
}

// fields is a head split into its start line and header lines (without line ends).
type fields struct {
	start string
	lines []string
}

// splitHead splits a head returned by readHead. s holds the whole head as one string so that the
// parts share its memory.
func splitHead(s string, lines []string) (fields, error) {
	var f fields
	f.lines = lines[:0]
	first := true
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return f, errMalformed
		}
		line := s[:i]
		s = s[i+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if line == "" {
			break
		}
		if first {
			f.start, first = line, false
			continue
		}
		f.lines = append(f.lines, line)
	}
	if first {
		return f, errMalformed
	}
	return f, nil
}

// parseHeader makes the header map of the field lines. Field names must be tokens with no space
// before the colon; values lose surrounding spaces and must not hold control characters; obsolete
// line folding is refused (RFC 9112 5.2 allows that).
func parseHeader(lines []string) (http.Header, error) {
	h := make(http.Header, len(lines))
	vals := make([]string, len(lines))
	for i, line := range lines {
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, errMalformed
		}
		name := line[:colon]
		if !validToken(name) {
			return nil, errMalformed
		}
		v := trimOWS(line[colon+1:])
		if !validValue(v) {
			return nil, errMalformed
		}
		key := canonicalKey(name)
		if prior, ok := h[key]; ok {
			h[key] = append(prior, v)
			continue
		}
		vals[i] = v
		h[key] = vals[i : i+1 : i+1]
	}
	return h, nil
}

// canonicalKey is textproto's canonical form, without allocating when name already has it.
func canonicalKey(name string) string {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(name)
		}
		upper = c == '-'
	}
	return name
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// tokenChars are RFC 9110's tchar.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// parseVersion reads "HTTP/x.y" with one digit each.
func parseVersion(v string) (major, minor int, ok bool) {
	if len(v) != 8 || v[:5] != "HTTP/" || v[6] != '.' {
		return 0, 0, false
	}
	a, b := v[5], v[7]
	if a < '0' || a > '9' || b < '0' || b > '9' {
		return 0, 0, false
	}
	return int(a - '0'), int(b - '0'), true
}

// requestLine is a parsed request line.
type requestLine struct {
	method, target, proto string
	major, minor          int
}

func parseRequestLine(s string) (requestLine, error) {
	var rl requestLine
	sp1 := strings.IndexByte(s, ' ')
	if sp1 <= 0 {
		return rl, errMalformed
	}
	rest := s[sp1+1:]
	sp2 := strings.LastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return rl, errMalformed
	}
	rl.method, rl.target, rl.proto = s[:sp1], rest[:sp2], rest[sp2+1:]
	if !validToken(rl.method) || strings.ContainsAny(rl.target, " \t") || !validTarget(rl.target) {
		return rl, errMalformed
	}
	var ok bool
	if rl.major, rl.minor, ok = parseVersion(rl.proto); !ok {
		return rl, errMalformed
	}
	if rl.major != 1 && !(rl.major == 2 && rl.method == "PRI") {
		return rl, errVersion
	}
	return rl, nil
}

func validTarget(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// framing is how a message's body is delimited (RFC 9112 6.3).
type framing struct {
	length  int64 // body length; -1: chunked or until close
	chunked bool
}

// requestFraming reads a request's body framing from its header. Transfer-Encoding other than
// "chunked", and Transfer-Encoding together with Content-Length (a smuggling vector), are refused,
// as are Content-Length fields that disagree.
func requestFraming(h http.Header) (framing, error) {
	te, hasTE := h["Transfer-Encoding"]
	cl, hasCL := h["Content-Length"]
	if hasTE {
		if hasCL {
			return framing{}, errMalformed
		}
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return framing{}, errTransferEncoding
		}
		return framing{length: -1, chunked: true}, nil
	}
	if !hasCL {
		return framing{}, nil
	}
	n, err := contentLength(cl)
	if err != nil {
		return framing{}, err
	}
	return framing{length: n}, nil
}

// responseFraming reads a response's body framing; a response without a body (to HEAD, 1xx, 204,
// 304) has length 0, one without length fields is delimited by the connection's end (-1).
func responseFraming(h http.Header, status int, head bool) (framing, error) {
	if head || status/100 == 1 || status == http.StatusNoContent || status == http.StatusNotModified {
		return framing{}, nil
	}
	if te, ok := h["Transfer-Encoding"]; ok {
		last := te[len(te)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if !strings.EqualFold(strings.TrimSpace(last), "chunked") {
			return framing{length: -1}, nil // read until close (RFC 9112 6.3 item 4)
		}
		return framing{length: -1, chunked: true}, nil
	}
	if cl, ok := h["Content-Length"]; ok {
		n, err := contentLength(cl)
		if err != nil {
			return framing{}, err
		}
		return framing{length: n}, nil
	}
	return framing{length: -1}, nil
}

// contentLength reads Content-Length fields: all the same non-negative decimal number.
func contentLength(vs []string) (int64, error) {
	var n int64 = -1
	for _, v := range vs {
		for _, part := range strings.Split(v, ",") {
			part = trimOWS(part)
			if part == "" || part[0] == '+' || part[0] == '-' {
				return 0, errMalformed
			}
			m, err := strconv.ParseInt(part, 10, 64)
			if err != nil || m < 0 {
				return 0, errMalformed
			}
			if n >= 0 && m != n {
				return 0, errMalformed
			}
			n = m
		}
	}
	if n < 0 {
		return 0, errMalformed
	}
	return n, nil
}

// connectionHas reports whether the Connection fields list the option (case-insensitively).
func connectionHas(h http.Header, option string) bool {
	for _, v := range h["Connection"] {
		for v != "" {
			var f string
			f, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(trimOWS(f), option) {
				return true
			}
		}
	}
	return false
}

// statusLine is a parsed response status line.
type statusLine struct {
	proto        string
	major, minor int
	code         int
	status       string // "200 OK"
}

func parseStatusLine(s string) (statusLine, error) {
	var sl statusLine
	proto, rest, ok := strings.Cut(s, " ")
	if !ok {
		return sl, errMalformed
	}
	if sl.major, sl.minor, ok = parseVersion(proto); !ok || sl.major != 1 {
		return sl, errMalformed
	}
	sl.proto = proto
	code := rest
	if len(code) > 3 {
		if code[3] != ' ' {
			return sl, errMalformed
		}
		code = code[:3]
	}
	if len(code) != 3 || code[0] < '1' || code[0] > '9' {
		return sl, errMalformed
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		return sl, errMalformed
	}
	sl.code, sl.status = n, rest
	return sl, nil
}
