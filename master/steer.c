/* SPDX-License-Identifier: BSD-2-Clause */
/* steer.c — the eBPF program that deals a reuseport group's new clients to
 * its first n sockets in turn (see steer.h). Runs in the master, at start
 * and on reloads that change the worker count; never in a worker, never on
 * a client's path (the kernel runs the program at each SYN).
 *
 * Six instructions written here rather than compiled: a counter in a
 * one-entry array map, fetched and incremented atomically, modulo n. No
 * libbpf and no BPF compiler at build time for that; the kernel's verifier
 * checks it at load like any other. */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "steer.h"

static int
sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static struct bpf_insn
insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn i;

	memset(&i, 0, sizeof(i));
	i.code = code;
	i.dst_reg = dst & 0xf;
	i.src_reg = src & 0xf;
	i.off = off;
	i.imm = imm;
	return i;
}

int
steer_rr_prog(unsigned n)
{
	union bpf_attr attr;
	struct bpf_insn code[7];
	int map, prog, err;

	if (n == 0) {
		errno = EINVAL;
		return -1;
	}
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 4;
	attr.max_entries = 1;
	if ((map = sys_bpf(BPF_MAP_CREATE, &attr)) == -1)
		return -1;
	/* r1 = &counter (the map's value, by direct access) */
	code[0] = insn(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_VALUE, 0, map);
	code[1] = insn(0, 0, 0, 0, 0); /* the value's offset: 0 */
	/* r2 = 1; r2 = atomic_fetch_add(*r1, r2) */
	code[2] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 1);
	code[3] = insn(BPF_STX | BPF_W | BPF_ATOMIC, 1, 2, 0, BPF_ADD | BPF_FETCH);
	/* return r2 % n: the socket's index in the group */
	code[4] = insn(BPF_ALU | BPF_MOV | BPF_X, 0, 2, 0, 0);
	code[5] = insn(BPF_ALU | BPF_MOD | BPF_K, 0, 0, 0, (int32_t)n);
	code[6] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	attr.insns = (uint64_t)(uintptr_t)code;
	attr.insn_cnt = sizeof(code) / sizeof(code[0]);
	attr.license = (uint64_t)(uintptr_t)"BSD";
	prog = sys_bpf(BPF_PROG_LOAD, &attr);
	err = errno;
	/* The program holds the map now (or failed): our descriptor goes. */
	close(map);
	errno = err;
	return prog;
}
