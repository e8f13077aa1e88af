// SPDX-License-Identifier: (MIT OR Apache-2.0)
// The libbpf peer of the whole-process harness (benches/whole-process.sh):
// one process does exactly one operation through libbpf and exits, as
// `ember` does from its CLI, so both pay the same process start, page
// faults and allocator warm-up.
//
//   libbpf-driver open FILE              btf__parse(FILE) + btf__free
//   libbpf-driver load OBJ [BTF_PATH]    bpf_object__open_file (with
//                                        btf_custom_path) + __load + __close
//
// A load pins nothing: maps that ask to be pinned by name get a NULL pin
// path, as `ember load` without --pin. Exit status 0 on success; libbpf's
// messages go to stderr only with LIBBPF_DRIVER_VERBOSE=1.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

static int open_btf(const char *path)
{
	struct btf *btf = btf__parse(path, NULL);
	long err = libbpf_get_error(btf);

	if (err) {
		fprintf(stderr, "btf__parse %s: %s\n", path, strerror((int)-err));
		return 1;
	}
	btf__free(btf);
	return 0;
}

static int load(const char *path, const char *btf_path)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = btf_path);
	struct bpf_object *obj = bpf_object__open_file(path, &opts);
	struct bpf_map *map;
	long err = libbpf_get_error(obj);

	if (err) {
		fprintf(stderr, "open %s: %s\n", path, strerror((int)-err));
		return 1;
	}
	bpf_object__for_each_map(map, obj) {
		if (bpf_map__set_pin_path(map, NULL)) {
			fprintf(stderr, "%s: cannot unpin map %s\n", path, bpf_map__name(map));
			bpf_object__close(obj);
			return 1;
		}
	}
	err = bpf_object__load(obj);
	bpf_object__close(obj);
	if (err) {
		fprintf(stderr, "load %s: %s\n", path, strerror((int)-err));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *v = getenv("LIBBPF_DRIVER_VERBOSE");

	if (!v || strcmp(v, "1"))
		libbpf_set_print(quiet);
	if (argc == 3 && !strcmp(argv[1], "open"))
		return open_btf(argv[2]);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "load"))
		return load(argv[2], argc == 4 ? argv[3] : NULL);
	fprintf(stderr, "usage: %s open FILE | load OBJ [BTF_PATH]\n", argv[0]);
	return 2;
}
