// SPDX-License-Identifier: (MIT OR Apache-2.0)
// Oracle for `ember load`: opens and loads a BPF object with the system's
// libbpf (optionally with a custom kernel BTF), then prints what it
// created, one tab-separated line each:
//   P name type instruction_count_after_relocation
//   M name type key_size value_size max_entries
//   T name tag          (each loaded program's kernel tag, 16 hex digits)
//   I name index code dst src off imm   (with -i: the instructions libbpf
//                                        gave the kernel, one line a slot)
// Options: -x PROG turns PROG's autoload off (repeatable); -t
// PROG=TYPE/ATTACH sets its program and expected attach type (numbers;
// for sections this libbpf does not know); -i prints the instructions.
// Exit status 2 when libbpf cannot open the object, 3 when the load
// fails (libbpf's messages go to stderr).
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
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
	const char *off[256], *types[256];
	struct bpf_map *map;
	int err, i, n_off = 0, n_types = 0, c, dump = 0;

	while ((c = getopt(argc, argv, "it:x:")) != -1) {
		if (c == 'i') {
			dump = 1;
			continue;
		}
		if (c == 't' && n_types < 256) {
			types[n_types++] = optarg;
			continue;
		}
		if (c != 'x' || n_off == 256) {
			fprintf(stderr, "usage: %s [-i] [-x PROG]... [-t PROG=TYPE/ATTACH]... OBJECT [KERNEL_BTF]\n", argv[0]);
			return 1;
		}
		off[n_off++] = optarg;
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc < 2) {
		fprintf(stderr, "usage: %s [-i] [-x PROG]... [-t PROG=TYPE/ATTACH]... OBJECT [KERNEL_BTF]\n", argv[0]);
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
	for (i = 0; i < n_off; i++) {
		prog = bpf_object__find_program_by_name(obj, off[i]);
		if (!prog) {
			fprintf(stderr, "no program %s\n", off[i]);
			return 1;
		}
		bpf_program__set_autoload(prog, false);
	}
	for (i = 0; i < n_types; i++) {
		char name[256];
		unsigned int type, attach;

		if (sscanf(types[i], "%255[^=]=%u/%u", name, &type, &attach) != 3 ||
		    !(prog = bpf_object__find_program_by_name(obj, name))) {
			fprintf(stderr, "bad -t %s\n", types[i]);
			return 1;
		}
		bpf_program__set_type(prog, type);
		bpf_program__set_expected_attach_type(prog, attach);
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "libbpf cannot load %s: %d (%s)\n", argv[1], err, strerror(-err));
		bpf_object__close(obj);
		return 3;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *t = libbpf_bpf_prog_type_str(bpf_program__type(prog));
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		printf("P\t%s\t%s\t%zu\n", bpf_program__name(prog), t ? t : "?",
		       bpf_program__insn_cnt(prog));
		if (bpf_program__fd(prog) < 0)
			continue;
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
			fprintf(stderr, "no info for %s: %d\n", bpf_program__name(prog), -errno);
			return 4;
		}
		printf("T\t%s\t", bpf_program__name(prog));
		for (i = 0; i < BPF_TAG_SIZE; i++)
			printf("%02x", info.tag[i]);
		printf("\n");
		for (i = 0; dump && i < (int)bpf_program__insn_cnt(prog); i++) {
			const struct bpf_insn *in = &bpf_program__insns(prog)[i];

			printf("I\t%s\t%d\t%u\t%u\t%u\t%d\t%d\n", bpf_program__name(prog), i,
			       in->code, in->dst_reg, in->src_reg, in->off, in->imm);
		}
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
