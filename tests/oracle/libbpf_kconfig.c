// SPDX-License-Identifier: (MIT OR Apache-2.0)
// Oracle for `.kconfig` values: opens a BPF object with the system's libbpf,
// giving it the config text in CONFIG_FILE as the `kconfig` open option,
// loads it, and prints the `.kconfig` map's value as hex on one line.
// Usage: libbpf_kconfig OBJECT CONFIG_FILE
// Exit status 2 when libbpf cannot open the object, 3 when the load fails
// (libbpf's messages go to stderr), 4 when there is no `.kconfig` map.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return NULL;
	}
	buf = calloc(1, n + 1);
	if (buf && fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct bpf_object *obj;
	struct bpf_map *map;
	unsigned char *value;
	__u32 zero = 0, size, i;
	char *config;

	if (argc != 3) {
		fprintf(stderr, "usage: %s OBJECT CONFIG_FILE\n", argv[0]);
		return 1;
	}
	config = slurp(argv[2]);
	if (!config) {
		perror(argv[2]);
		return 1;
	}
	libbpf_set_print(print);
	opts.kconfig = config;
	obj = bpf_object__open_file(argv[1], &opts);
	if (!obj)
		return 2;
	if (bpf_object__load(obj))
		return 3;
	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		size_t len = strlen(name);

		if (len < 8 || strcmp(name + len - 8, ".kconfig"))
			continue;
		size = bpf_map__value_size(map);
		value = calloc(1, size);
		if (!value || bpf_map_lookup_elem(bpf_map__fd(map), &zero, value))
			return 3;
		for (i = 0; i < size; i++)
			printf("%02x", value[i]);
		printf("\n");
		return 0;
	}
	return 4;
}
