package pgwire

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/exec"
)

// decodeParams turns the values of a Bind message into cluster.Params.
// oids has one entry per parameter of the prepared statement; formats has
// 0, 1 or len(values) entries (validated by the caller).
func decodeParams(oids []uint32, formats []int16, values [][]byte) ([]cluster.Param, error) {
	if len(values) == 0 {
		return nil, nil
	}
	params := make([]cluster.Param, len(values))
	for i, v := range values {
		format := formatText
		switch len(formats) {
		case 0:
		case 1:
			format = formats[0]
		default:
			format = formats[i]
		}
		p, err := decodeParam(oids[i], format, v)
		if err != nil {
			return nil, fmt.Errorf("parameter $%d: %w", i+1, err)
		}
		params[i] = p
	}
	return params, nil
}

// decodeParam decodes one parameter value. A nil value is NULL. Text format
// values are passed as strings; binary values are decoded by oid:
//
//	int2, int4, int8                  int64
//	float4, float8                    float64
//	bool                              bool
//	text, varchar, bpchar, name,
//	unknown, unspecified (0)          string
//	timestamp, timestamptz            int64 µs since 1970-01-01 00:00:00 (±infinity: MaxInt64/MinInt64)
//	interval                          int64 µs (a day is 24 h, a month 30 days)
//	text[], name[], varchar[],
//	int2[], int4[], int8[]            string: the array's text form ('{a,b}')
func decodeParam(oid uint32, format int16, v []byte) (cluster.Param, error) {
	if v == nil {
		return nil, nil
	}
	switch format {
	case formatText:
		if err := exec.CheckUTF8(v); err != nil {
			return nil, err
		}
		return string(v), nil
	case formatBinary:
	default:
		return nil, &sqlError{code: codeProtocolViolation, msg: fmt.Sprintf("unsupported format code: %d", format)}
	}
	bad := func() error {
		return &sqlError{code: "22P03", msg: fmt.Sprintf("incorrect binary data format for type OID %d", oid)}
	}
	switch oid {
	case oidInt2:
		if len(v) != 2 {
			return nil, bad()
		}
		return int64(int16(binary.BigEndian.Uint16(v))), nil
	case oidInt4:
		if len(v) != 4 {
			return nil, bad()
		}
		return int64(int32(binary.BigEndian.Uint32(v))), nil
	case oidInt8:
		if len(v) != 8 {
			return nil, bad()
		}
		return int64(binary.BigEndian.Uint64(v)), nil
	case oidFloat4:
		if len(v) != 4 {
			return nil, bad()
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(v))), nil
	case oidFloat8:
		if len(v) != 8 {
			return nil, bad()
		}
		return math.Float64frombits(binary.BigEndian.Uint64(v)), nil
	case oidBool:
		if len(v) != 1 {
			return nil, bad()
		}
		return v[0] != 0, nil
	case oidText, oidVarchar, oidBpchar, oidName, oidUnknown, oidUnspecified:
		if err := exec.CheckUTF8(v); err != nil {
			return nil, err
		}
		return string(v), nil
	case oidTextArray, oidNameArray, oidVarcharArr, oidInt2Array, oidInt4Array, oidInt8Array:
		return decodeArray(v, bad)
	case oidTimestamp, oidTimestamptz:
		if len(v) != 8 {
			return nil, bad()
		}
		us := int64(binary.BigEndian.Uint64(v))
		if us == math.MaxInt64 || us == math.MinInt64 {
			return us, nil
		}
		if us > math.MaxInt64-pgEpochMicros {
			return nil, &sqlError{code: "22008", msg: "timestamp out of range"}
		}
		return us + pgEpochMicros, nil
	case oidInterval:
		if len(v) != 16 {
			return nil, bad()
		}
		us := int64(binary.BigEndian.Uint64(v[0:8]))
		days := int64(int32(binary.BigEndian.Uint32(v[8:12])))
		months := int64(int32(binary.BigEndian.Uint32(v[12:16])))
		total := float64(us) + float64(days)*float64(microsPerDay) + float64(months)*float64(microsPerMonth)
		if total > math.MaxInt64 || total < math.MinInt64 {
			return nil, &sqlError{code: "22008", msg: "interval out of range"}
		}
		return us + days*microsPerDay + months*microsPerMonth, nil
	default:
		return nil, &sqlError{code: "0A000", msg: fmt.Sprintf("binary format for parameters of type OID %d is not supported", oid)}
	}
}

// decodeArray reads a one-dimensional array in binary format (ndim,
// has-null flag, element OID, then length and lower bound, then each
// element as length and bytes) into PostgreSQL's array text form.
func decodeArray(v []byte, bad func() error) (cluster.Param, error) {
	if len(v) < 12 {
		return nil, bad()
	}
	ndim := binary.BigEndian.Uint32(v)
	elem := binary.BigEndian.Uint32(v[8:])
	if ndim == 0 {
		return "{}", nil
	}
	if ndim != 1 || len(v) < 20 {
		return nil, &sqlError{code: codeFeatureNotSupported, msg: "only one-dimensional array parameters are supported"}
	}
	n := int(binary.BigEndian.Uint32(v[12:]))
	rest := v[20:]
	var sb []byte
	sb = append(sb, '{')
	for i := 0; i < n; i++ {
		if len(rest) < 4 {
			return nil, bad()
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if i > 0 {
			sb = append(sb, ',')
		}
		if l < 0 {
			sb = append(sb, "NULL"...)
			continue
		}
		if int(l) > len(rest) {
			return nil, bad()
		}
		e, err := decodeParam(elem, formatBinary, rest[:l])
		if err != nil {
			return nil, err
		}
		rest = rest[l:]
		switch x := e.(type) {
		case string:
			sb = append(sb, '"')
			for _, c := range []byte(x) {
				if c == '"' || c == '\\' {
					sb = append(sb, '\\')
				}
				sb = append(sb, c)
			}
			sb = append(sb, '"')
		default:
			sb = fmt.Appendf(sb, "%v", x)
		}
	}
	return string(append(sb, '}')), nil
}
