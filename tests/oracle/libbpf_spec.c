// SPDX-License-Identifier: (MIT OR Apache-2.0)
// Oracle for ember's ObjectSpec: opens a BPF object with the system's
// libbpf (open only, nothing is loaded), applies the settings given on the
// command line with libbpf's setters, and prints the open view.
//
// Settings, each WHAT:NAME=VALUE (VALUE in C notation: 77, 0x400):
//   map:     max_entries key_size value_size flags autocreate
//            data (VALUE: the whole initial value in hex, as
//            bpf_map__set_initial_value takes it)
//   program: autoload type attach pflags (bpf_program__set_flags)
// Output, one tab-separated line each, in libbpf's order:
//   S what name value result        (the setter's return value, 0 or -errno)
//   P name section type attach autoload flags insn_cnt
//   M name type key_size value_size max_entries map_flags autocreate
//   I name type key_size value_size max_entries map_flags (its inner map)
//   D name hex                      (a map's initial value, when it has one)
// (No setter for an inner map template: libbpf 1.1's setters dereference
// the template's object, which it has none of, and crash.)
// Types and attach types are numbers (libbpf 1.1 has no names for newer
// ones). Exit status 2 when libbpf refuses to open the object, 1 on a
// malformed setting or an unknown map or program name.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, args);
	return 0;
}

static int set_data(struct bpf_map *map, const char *hex)
{
	size_t i, n = strlen(hex) / 2;
	unsigned char *buf = calloc(1, n + 1);
	int err;

	for (i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &buf[i]);
	err = bpf_map__set_initial_value(map, buf, n);
	free(buf);
	return err;
}

static int set_map(struct bpf_object *obj, const char *what, const char *name,
		   const char *value)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, name);
	unsigned long long v = strtoull(value, NULL, 0);

	if (!map) {
		fprintf(stderr, "no map %s\n", name);
		exit(1);
	}
	if (!strcmp(what, "data"))
		return set_data(map, value);
	if (!strcmp(what, "max_entries"))
		return bpf_map__set_max_entries(map, v);
	if (!strcmp(what, "key_size"))
		return bpf_map__set_key_size(map, v);
	if (!strcmp(what, "value_size"))
		return bpf_map__set_value_size(map, v);
	if (!strcmp(what, "flags"))
		return bpf_map__set_map_flags(map, v);
	if (!strcmp(what, "autocreate"))
		return bpf_map__set_autocreate(map, v);
	fprintf(stderr, "unknown map setting %s\n", what);
	exit(1);
}

static int set_prog(struct bpf_object *obj, const char *what, const char *name,
		    unsigned long long v)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);

	if (!prog) {
		fprintf(stderr, "no program %s\n", name);
		exit(1);
	}
	if (!strcmp(what, "autoload"))
		return bpf_program__set_autoload(prog, v);
	if (!strcmp(what, "type"))
		return bpf_program__set_type(prog, v);
	if (!strcmp(what, "attach"))
		return bpf_program__set_expected_attach_type(prog, v);
	if (!strcmp(what, "pflags"))
		return bpf_program__set_flags(prog, v);
	fprintf(stderr, "unknown program setting %s\n", what);
	exit(1);
}

int main(int argc, char **argv)
{
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct bpf_map *map;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT [WHAT:NAME=VALUE...]\n", argv[0]);
		return 1;
	}
	libbpf_set_print(quiet);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "libbpf cannot open %s: %d\n", argv[1], -errno);
		return 2;
	}
	for (i = 2; i < argc; i++) {
		char *arg = strdup(argv[i]), *colon = strchr(arg, ':'), *eq = strrchr(arg, '=');
		int err;

		if (!colon || !eq || eq < colon) {
			fprintf(stderr, "bad setting %s\n", argv[i]);
			return 1;
		}
		*colon = *eq = 0;
		if (!strcmp(arg, "autoload") || !strcmp(arg, "type") || !strcmp(arg, "attach") ||
		    !strcmp(arg, "pflags"))
			err = set_prog(obj, arg, colon + 1, strtoull(eq + 1, NULL, 0));
		else
			err = set_map(obj, arg, colon + 1, eq + 1);
		printf("S\t%s\t%s\t%s\t%d\n", arg, colon + 1, eq + 1, err);
		free(arg);
	}
	bpf_object__for_each_program(prog, obj) {
		printf("P\t%s\t%s\t%u\t%u\t%d\t%u\t%zu\n", bpf_program__name(prog),
		       bpf_program__section_name(prog), (unsigned)bpf_program__type(prog),
		       (unsigned)bpf_program__expected_attach_type(prog),
		       bpf_program__autoload(prog), bpf_program__flags(prog),
		       bpf_program__insn_cnt(prog));
	}
	bpf_object__for_each_map(map, obj) {
		struct bpf_map *inner = bpf_map__inner_map(map);
		const unsigned char *init;
		size_t n, k;

		printf("M\t%s\t%u\t%u\t%u\t%u\t%u\t%d\n", bpf_map__name(map),
		       (unsigned)bpf_map__type(map), bpf_map__key_size(map),
		       bpf_map__value_size(map), bpf_map__max_entries(map),
		       bpf_map__map_flags(map), bpf_map__autocreate(map));
		if (inner)
			printf("I\t%s\t%u\t%u\t%u\t%u\t%u\n", bpf_map__name(map),
			       (unsigned)bpf_map__type(inner), bpf_map__key_size(inner),
			       bpf_map__value_size(inner), bpf_map__max_entries(inner),
			       bpf_map__map_flags(inner));
		init = bpf_map__initial_value(map, &n);
		if (init) {
			printf("D\t%s\t", bpf_map__name(map));
			for (k = 0; k < n; k++)
				printf("%02x", init[k]);
			printf("\n");
		}
	}
	bpf_object__close(obj);
	return 0;
}
