// SPDX-License-Identifier: (MIT OR Apache-2.0)
// Oracle for `ember load`: opens and loads a BPF object with the system's
// libbpf (optionally with a custom kernel BTF), then prints what it
// created, one tab-separated line each:
//   P name type instruction_count_after_relocation
//   M name type key_size value_size max_entries
// Exit status 2 when libbpf cannot open the object, 3 when the load
// fails (libbpf's messages go to stderr).
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>

static int print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct bpf_map *map;
	int err;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT [KERNEL_BTF]\n", argv[0]);
		return 1;
	}
	if (argc > 2)
		opts.btf_custom_path = argv[2];
	libbpf_set_print(print);
	obj = bpf_object__open_file(argv[1], &opts);
	if (!obj) {
		fprintf(stderr, "libbpf cannot open %s: %d\n", argv[1], -errno);
		return 2;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "libbpf cannot load %s: %d (%s)\n", argv[1], err, strerror(-err));
		bpf_object__close(obj);
		return 3;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *t = libbpf_bpf_prog_type_str(bpf_program__type(prog));
		printf("P\t%s\t%s\t%zu\n", bpf_program__name(prog), t ? t : "?",
		       bpf_program__insn_cnt(prog));
	}
	bpf_object__for_each_map(map, obj) {
		const char *t = libbpf_bpf_map_type_str(bpf_map__type(map));
		printf("M\t%s\t%s\t%u\t%u\t%u\n", bpf_map__name(map), t ? t : "?",
		       bpf_map__key_size(map), bpf_map__value_size(map),
		       bpf_map__max_entries(map));
	}
	/* libbpf pins by-name maps under /sys/fs/bpf by default: leave
	 * nothing behind for the next run to reuse. */
	bpf_object__unpin_maps(obj, NULL);
	bpf_object__close(obj);
	return 0;
}
