// templates/hello.yml on the fixture kernel that mounts its root from a disk
// (tskit/kernel:6.1-builtin: everything built in, no modules tarball), for the kernel+squashfs
// and kernel+erofs tests. Test material.
export function builtinHello(template: string): string {
  const out = template.replace('localhost:5000/tskit/kernel:6.1\n', 'localhost:5000/tskit/kernel:6.1-builtin\n  tar: none\n');
  if (out === template) throw new Error('templates/hello.yml no longer names localhost:5000/tskit/kernel:6.1');
  return out;
}
