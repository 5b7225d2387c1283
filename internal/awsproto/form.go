package awsproto

// The query protocol's request side: a flat form of dotted keys decoded
// into a generated input struct. Member names are the struct's json tags
// (the model's member names; no model Berth serves renames members for the
// query protocol with locationName, and none flattens its lists):
//
//	Namespace=App                                  structure member
//	MetricData.member.1.MetricName=Latency         list element (1-based)
//	MetricData.member.1.Dimensions.member.2.Name=… nested
//	Attributes.entry.1.key=k&Attributes.entry.1.value=v   map entry
//	AlarmNames=                                    an empty list
//
// Timestamps are ISO 8601 (epoch seconds are accepted too), booleans
// true/false, blobs base64.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// maxFormDepth bounds how many dotted parts a form key may have.
const maxFormDepth = 64

// formNode is one dotted prefix of the form: its value, if the form has
// the key itself, and the keys one part longer.
type formNode struct {
	value    *string
	children map[string]*formNode
}

func (n *formNode) child(name string) *formNode {
	if n == nil {
		return nil
	}
	return n.children[name]
}

func buildFormTree(form url.Values) (*formNode, error) {
	root := &formNode{}
	for key, vals := range form {
		if len(vals) == 0 {
			continue
		}
		parts := strings.Split(key, ".")
		if len(parts) > maxFormDepth {
			return nil, &SerializationError{Msg: fmt.Sprintf("The parameter name %.100s has more than %d parts", key, maxFormDepth)}
		}
		n := root
		for _, p := range parts {
			c := n.children[p]
			if c == nil {
				if n.children == nil {
					n.children = map[string]*formNode{}
				}
				c = &formNode{}
				n.children[p] = c
			}
			n = c
		}
		v := vals[0]
		n.value = &v
	}
	return root, nil
}

// DecodeForm decodes query-protocol form fields into v, a pointer to a
// generated input struct. Fields it does not know (Action, Version, the
// signature's) are ignored. A value of the wrong type gives a
// *SerializationError naming the parameter.
func DecodeForm(form url.Values, v any) error {
	root, err := buildFormTree(form)
	if err != nil {
		return err
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("awsproto: DecodeForm into %T", v)
	}
	return decodeFormStruct(root, rv.Elem(), "")
}

var (
	timeType = reflect.TypeOf(Time{})
	rawType  = reflect.TypeOf(json.RawMessage(nil))
)

func decodeFormStruct(n *formNode, rv reflect.Value, path string) error {
	t := rv.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := memberName(f)
		if name == "" {
			continue
		}
		c := n.child(name)
		if c == nil {
			continue
		}
		if err := decodeFormValue(c, rv.Field(i), joinPath(path, name)); err != nil {
			return err
		}
	}
	return nil
}

// memberName is the wire name of a struct field: its json tag's name, else
// its xml tag's (hand-written query outputs), else the field name.
func memberName(f reflect.StructField) string {
	if !f.IsExported() || f.Name == "XMLName" {
		return ""
	}
	if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" {
		if tag == "-" {
			return ""
		}
		return tag
	}
	if tag, _, _ := strings.Cut(f.Tag.Get("xml"), ","); tag != "" {
		if tag == "-" {
			return ""
		}
		return tag
	}
	return f.Name
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func decodeFormValue(n *formNode, rv reflect.Value, path string) error {
	t := rv.Type()
	if t.Kind() == reflect.Pointer {
		elem := reflect.New(t.Elem())
		if err := decodeFormValue(n, elem.Elem(), path); err != nil {
			return err
		}
		rv.Set(elem)
		return nil
	}
	switch {
	case t == timeType:
		s, err := formScalar(n, path, "a timestamp")
		if err != nil {
			return err
		}
		p, ok := parseTimeString(s)
		if !ok {
			return formTypeError(path, s, "an ISO 8601 timestamp")
		}
		rv.Set(reflect.ValueOf(Time{p.UTC()}))
		return nil
	case t == rawType:
		return &SerializationError{Msg: fmt.Sprintf("The parameter %s is a document, which the query protocol cannot carry", path)}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		s, err := formScalar(n, path, "base64 data")
		if err != nil {
			return err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return formTypeError(path, s, "base64 data")
		}
		rv.SetBytes(b)
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		s, err := formScalar(n, path, "a string")
		if err != nil {
			return err
		}
		rv.SetString(s)
	case reflect.Bool:
		s, err := formScalar(n, path, "a boolean")
		if err != nil {
			return err
		}
		switch strings.ToLower(s) {
		case "true":
			rv.SetBool(true)
		case "false":
			rv.SetBool(false)
		default:
			return formTypeError(path, s, "a boolean")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, err := formScalar(n, path, "an integer")
		if err != nil {
			return err
		}
		i, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return formTypeError(path, s, "an integer")
		}
		rv.SetInt(i)
	case reflect.Float32, reflect.Float64:
		s, err := formScalar(n, path, "a number")
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, t.Bits())
		if err != nil {
			return formTypeError(path, s, "a number")
		}
		rv.SetFloat(f)
	case reflect.Struct:
		return decodeFormStruct(n, rv, path)
	case reflect.Slice:
		return decodeFormList(n, rv, path)
	case reflect.Map:
		return decodeFormMap(n, rv, path)
	default:
		return fmt.Errorf("awsproto: cannot decode the query parameter %s into %s", path, t)
	}
	return nil
}

// formScalar returns the value of a scalar parameter.
func formScalar(n *formNode, path, want string) (string, error) {
	if n.value == nil {
		return "", &SerializationError{Msg: fmt.Sprintf("The parameter %s must be %s, not a structure, list or map", path, want)}
	}
	return *n.value, nil
}

func formTypeError(path, value, want string) error {
	if len(value) > 100 {
		value = value[:100] + "..."
	}
	return &SerializationError{Msg: fmt.Sprintf("Value '%s' for parameter %s is invalid: it must be %s", value, path, want)}
}

// indexed returns the children of n.child(name) in index order (1, 2, ...).
func indexed(n *formNode, name, path string) ([]*formNode, error) {
	items := n.child(name)
	if items == nil {
		return nil, nil
	}
	type item struct {
		i int
		n *formNode
	}
	var list []item
	for k, c := range items.children {
		i, err := strconv.Atoi(k)
		if err != nil || i < 1 {
			return nil, &SerializationError{Msg: fmt.Sprintf("The parameter %s.%s.%s has no valid index: indexes are 1, 2, ...", path, name, k)}
		}
		list = append(list, item{i, c})
	}
	slices.SortFunc(list, func(a, b item) int { return a.i - b.i })
	out := make([]*formNode, len(list))
	for i, it := range list {
		out[i] = it.n
	}
	return out, nil
}

func decodeFormList(n *formNode, rv reflect.Value, path string) error {
	items, err := indexed(n, "member", path)
	if err != nil {
		return err
	}
	if items == nil && n.value != nil && *n.value != "" {
		return formTypeError(path, *n.value, "a list (Name.member.1=...)")
	}
	// "Name=" with no members is an empty list.
	s := reflect.MakeSlice(rv.Type(), len(items), len(items))
	for i, c := range items {
		if err := decodeFormValue(c, s.Index(i), fmt.Sprintf("%s.member.%d", path, i+1)); err != nil {
			return err
		}
	}
	rv.Set(s)
	return nil
}

func decodeFormMap(n *formNode, rv reflect.Value, path string) error {
	entries, err := indexed(n, "entry", path)
	if err != nil {
		return err
	}
	if entries == nil && n.value != nil && *n.value != "" {
		return formTypeError(path, *n.value, "a map (Name.entry.1.key=...)")
	}
	m := reflect.MakeMapWithSize(rv.Type(), len(entries))
	for i, c := range entries {
		at := fmt.Sprintf("%s.entry.%d", path, i+1)
		kn, vn := c.child("key"), c.child("value")
		if kn == nil || vn == nil {
			return &SerializationError{Msg: fmt.Sprintf("The map entry %s needs both a key and a value", at)}
		}
		k := reflect.New(rv.Type().Key()).Elem()
		if err := decodeFormValue(kn, k, at+".key"); err != nil {
			return err
		}
		v := reflect.New(rv.Type().Elem()).Elem()
		if err := decodeFormValue(vn, v, at+".value"); err != nil {
			return err
		}
		m.SetMapIndex(k, v)
	}
	rv.Set(m)
	return nil
}
