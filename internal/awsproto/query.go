package awsproto

// The query protocol's answers: XML documents wrapping the output in
// <OpResponse xmlns="…"><OpResult>…</OpResult><ResponseMetadata>…, and
// errors in <ErrorResponse><Error><Type>Sender|Receiver</Type><Code>…. The
// output is written from the struct by reflection, member names from the
// json tags (generated shapes) or xml tags (hand-written ones): lists as
// <member> elements, maps as <entry><key/><value/></entry>, timestamps ISO
// 8601, blobs base64.

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

func writeQueryOutput(w http.ResponseWriter, svc *Service, op, requestID string, out any) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<" + op + "Response")
	if svc.XMLNamespace != "" {
		b.WriteString(` xmlns="`)
		xml.EscapeText(&b, []byte(svc.XMLNamespace))
		b.WriteString(`"`)
	}
	b.WriteString(">")
	if rv := reflect.ValueOf(out); hasMembers(rv) {
		writeXMLValue(&b, op+"Result", rv)
	} else if svc.Protocol == Query {
		// A query-only service's model (ELBv2) gives every operation an
		// output shape, empty ones included, and its SDKs expect the
		// <OpResult/> element even then.
		b.WriteString("<" + op + "Result/>")
	}
	b.WriteString("<ResponseMetadata><RequestId>")
	xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></ResponseMetadata></" + op + "Response>")
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	w.Write(b.Bytes())
}

// hasMembers reports whether an output's type has members at all: an
// operation without an output shape answers no Result element.
func hasMembers(rv reflect.Value) bool {
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return false
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return rv.IsValid()
	}
	for i := range rv.NumField() {
		if memberName(rv.Type().Field(i)) != "" {
			return true
		}
	}
	return false
}

// writeXMLValue writes <name>value</name>; absent values (nil pointers,
// slices and maps) are left out, empty lists written as <name/>.
func writeXMLValue(b *bytes.Buffer, name string, rv reflect.Value) {
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return
		}
		rv = rv.Elem()
	}
	t := rv.Type()
	switch {
	case t == timeType:
		writeXMLText(b, name, rv.Interface().(Time).UTC().Format("2006-01-02T15:04:05.000Z"))
		return
	case t == rawType:
		if !rv.IsNil() {
			writeXMLText(b, name, string(rv.Bytes()))
		}
		return
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		if !rv.IsNil() {
			writeXMLText(b, name, base64.StdEncoding.EncodeToString(rv.Bytes()))
		}
		return
	}
	switch t.Kind() {
	case reflect.String:
		writeXMLText(b, name, rv.String())
	case reflect.Bool:
		writeXMLText(b, name, strconv.FormatBool(rv.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		writeXMLText(b, name, strconv.FormatInt(rv.Int(), 10))
	case reflect.Float32, reflect.Float64:
		writeXMLText(b, name, formatXMLFloat(rv.Float()))
	case reflect.Struct:
		b.WriteString("<" + name + ">")
		for i := range t.NumField() {
			if m := memberName(t.Field(i)); m != "" {
				writeXMLValue(b, m, rv.Field(i))
			}
		}
		b.WriteString("</" + name + ">")
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return
		}
		if rv.Len() == 0 {
			b.WriteString("<" + name + "/>")
			return
		}
		b.WriteString("<" + name + ">")
		for i := range rv.Len() {
			writeXMLValue(b, "member", rv.Index(i))
		}
		b.WriteString("</" + name + ">")
	case reflect.Map:
		if rv.IsNil() {
			return
		}
		b.WriteString("<" + name + ">")
		keys := rv.MapKeys()
		sortValues(keys)
		for _, k := range keys {
			b.WriteString("<entry>")
			writeXMLValue(b, "key", k)
			writeXMLValue(b, "value", rv.MapIndex(k))
			b.WriteString("</entry>")
		}
		b.WriteString("</" + name + ">")
	}
}

func writeXMLText(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}

// formatXMLFloat writes a number as JSON would: plain decimals, exponents
// only for very large or small magnitudes.
func formatXMLFloat(f float64) string {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// sortValues orders map keys (strings in every model) for stable output.
func sortValues(keys []reflect.Value) {
	slices.SortFunc(keys, func(a, b reflect.Value) int {
		return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
	})
}

type queryErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func writeQueryError(w http.ResponseWriter, svc *Service, requestID string, e *Error) {
	var resp queryErrorResponse
	if svc != nil {
		resp.Xmlns = svc.XMLNamespace
	}
	resp.Error.Type = faultType(svc, e)
	resp.Error.Code = queryCode(svc, e.Code)
	resp.Error.Message = e.Message
	resp.RequestID = requestID
	b, _ := xml.Marshal(resp)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.HTTPStatus())
	w.Write([]byte(xml.Header))
	w.Write(b)
}
