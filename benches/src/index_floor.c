/* The C floor for ember's BTF name index: the same work as
 * NameIndex::build, written plainly in C.
 *
 * Input: a little-endian BTF blob already opened (the offset of each type
 * record, as ember's Btf keeps it) and the string section. Like ember, it
 * first counts the named types to size its table. Work: for
 * each named type, find its essential name (the part before the last
 * "x___y" flavor suffix), hash kind + essential name word-at-a-time
 * (an fx/wyhash-class multiply-xor hash with a murmur finalizer), and put
 * the type id into an open-addressing table of u32 ids (linear probing,
 * 0 = empty, load factor <= 7/8), allocated once per build with calloc.
 * Nothing is copied: like ember, the table holds ids only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct floor_index {
	uint32_t *slots;
	uint32_t mask;
	uint32_t len;
};

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static size_t essential_len(const uint8_t *n, size_t len)
{
	/* The last "___" with a non-'_' byte on either side. */
	for (size_t i = len >= 5 ? len - 5 + 1 : 0; i-- > 0;) {
		if (n[i] != '_' && n[i + 1] == '_' && n[i + 2] == '_' &&
		    n[i + 3] == '_' && n[i + 4] != '_')
			return i + 1;
	}
	return len;
}

static inline uint64_t hash(uint32_t kind, const uint8_t *n, size_t len)
{
	const uint64_t seed = 0x517cc1b727220a95ull;
	uint64_t h = (uint64_t)kind * seed;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, n + i, 8);
		h = (((h << 5) | (h >> 59)) ^ w) * seed;
	}
	uint64_t t = 0;
	for (size_t j = len; j > i; j--)
		t = (t << 8) | n[j - 1];
	h = (((h << 5) | (h >> 59)) ^ t ^ (uint64_t)len) * seed;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/* Builds the index; returns 0, or -1 when out of memory. */
int floor_index_build(struct floor_index *ix, const uint8_t *data,
		      const uint32_t *offsets, uint32_t count, uint32_t start_id,
		      const uint8_t *strs, uint32_t str_len)
{
	uint32_t named = 0;

	for (uint32_t i = 0; i < count; i++)
		named += rd32(data + offsets[i]) != 0;
	uint32_t cap = 16;
	while (cap - cap / 8 < named)
		cap *= 2;
	ix->slots = calloc(cap, sizeof(uint32_t));
	if (!ix->slots)
		return -1;
	ix->mask = cap - 1;
	ix->len = 0;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *rec = data + offsets[i];
		uint32_t name_off = rd32(rec);
		if (!name_off || name_off >= str_len)
			continue;
		const uint8_t *n = strs + name_off;
		size_t len = strlen((const char *)n);
		size_t ess = essential_len(n, len);
		if (!ess)
			continue;
		uint32_t kind = (rd32(rec + 4) >> 24) & 0x7f;
		uint32_t s = (uint32_t)hash(kind, n, ess) & ix->mask;
		while (ix->slots[s])
			s = (s + 1) & ix->mask;
		ix->slots[s] = start_id + i;
		ix->len++;
	}
	return 0;
}

void floor_index_free(struct floor_index *ix)
{
	free(ix->slots);
	ix->slots = NULL;
}
