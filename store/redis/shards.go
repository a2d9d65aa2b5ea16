package redis

import (
	"hash/fnv"
	"strconv"
)

// Shards is how many device shards a brand's devices, log, outbox and
// counts are spread over. Everything one device's decision touches (its
// record, history, log entries, the outbox it is queued in, the counts
// that entry is in) shares its shard's hash tag, so one script decides
// atomically; and no key is shared by more than 1/Shards of a brand's
// devices. It is fixed for the life of the data: a device's shard is a
// hash of its id.
const Shards = 32

// slots is Redis Cluster's slot count.
const slots = 16384

// shardTags picks, for each shard of a brand, a hash tag whose slot lies
// in the shard's own sixteenth... thirty-second of the slot space: tags
// hashed at random would pile several shards on one primary now and
// then, and the slot ranges a cluster assigns are contiguous, so spread
// tags spread the load over every primary of up to Shards of them.
func shardTags(prefix, brandID string) [Shards]string {
	var out [Shards]string
	base := prefix + ":s:" + brandID + ":"
	for i := range Shards {
		lo, hi := i*slots/Shards, (i+1)*slots/Shards
		for n := 0; ; n++ {
			tag := base + strconv.Itoa(n)
			if s := int(crc16(tag) % slots); s >= lo && s < hi {
				out[i] = tag
				break
			}
		}
	}
	return out
}

// shardOf is the shard of a device: stable across processes and
// versions (FNV-1a of the id).
func shardOf(deviceID string) int {
	h := fnv.New32a()
	h.Write([]byte(deviceID))
	return int(h.Sum32() % Shards)
}

// crc16 is CRC-16/XMODEM, the hash Redis Cluster maps keys to slots
// with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
