// SPDX-License-Identifier: (MIT OR Apache-2.0)
// Oracle for `ember object inspect`: opens a BPF object with the system's
// libbpf (open only, nothing is loaded) and prints what libbpf makes of
// its programs and maps, one tab-separated line each:
//   P name section type expected_attach_type(number) insn_cnt
//   M name type key_size value_size max_entries map_flags
// Exit status 2 when libbpf refuses to open the object.
#include <errno.h>
#include <stdio.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, args);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct bpf_map *map;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OBJECT\n", argv[0]);
		return 1;
	}
	libbpf_set_print(quiet);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "libbpf cannot open %s: %d\n", argv[1], -errno);
		return 2;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *t = libbpf_bpf_prog_type_str(bpf_program__type(prog));
		printf("P\t%s\t%s\t%s\t%u\t%zu\n", bpf_program__name(prog),
		       bpf_program__section_name(prog), t ? t : "?",
		       (unsigned)bpf_program__expected_attach_type(prog),
		       bpf_program__insn_cnt(prog));
	}
	bpf_object__for_each_map(map, obj) {
		const char *t = libbpf_bpf_map_type_str(bpf_map__type(map));
		printf("M\t%s\t%s\t%u\t%u\t%u\t%u\n", bpf_map__name(map), t ? t : "?",
		       bpf_map__key_size(map), bpf_map__value_size(map),
		       bpf_map__max_entries(map), bpf_map__map_flags(map));
	}
	bpf_object__close(obj);
	return 0;
}
