// SPDX-License-Identifier: (MIT OR Apache-2.0)
// Oracle for ember's CO-RE solver: lets the system's libbpf relocate an
// object against a target BTF file (btf_custom_path) and prints every
// program's instructions after relocation, one line per 8-byte slot:
//   I prog index code dst src off imm
// libbpf relocates during bpf_object__load(); the kernel may then reject
// the programs (they are not meant to run), which does not matter: the
// relocated instructions are what we compare. A relocation libbpf itself
// refuses makes the load fail before any program is relocated; then the
// line "E <errno>" is printed.
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
	int err;

	if (argc != 3) {
		fprintf(stderr, "usage: %s OBJECT TARGET_BTF\n", argv[0]);
		return 1;
	}
	libbpf_set_print(print);
	opts.btf_custom_path = argv[2];
	obj = bpf_object__open_file(argv[1], &opts);
	if (!obj) {
		fprintf(stderr, "open failed: %d\n", -errno);
		return 2;
	}
	err = bpf_object__load(obj);
	bpf_object__for_each_program(prog, obj) {
		const struct bpf_insn *insn = bpf_program__insns(prog);
		size_t i, n = bpf_program__insn_cnt(prog);

		for (i = 0; i < n; i++)
			printf("I\t%s\t%zu\t%u\t%u\t%u\t%d\t%d\n", bpf_program__name(prog), i,
			       insn[i].code, insn[i].dst_reg, insn[i].src_reg, insn[i].off,
			       insn[i].imm);
	}
	printf("R\t%d\n", err);
	bpf_object__close(obj);
	return 0;
}
