//! Paths inside the target directory, checked when the file is read
//! (relative, no `..`); on disk they are reached beneath the target's
//! handle ([`super::beneath`]), so that no job ever writes outside it.

use std::fmt;
use std::path::{Component, Path};

/// A path relative to the target directory, normalised: no `.`, no `..`,
/// no root, no trailing slash, at least one component.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath {
    parts: Vec<String>,
}

impl RelPath {
    /// Checks and normalises a path written in the file. The error says
    /// what is wrong, without naming the entry.
    pub fn parse(text: &str) -> Result<RelPath, String> {
        let path = Path::new(text);
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => match part.to_str() {
                    Some(part) => parts.push(part.to_owned()),
                    None => return Err(format!("path {text:?} is not UTF-8")),
                },
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(format!(
                        "path {text:?} leaves the target directory (`..` is not allowed)"
                    ));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                        "path {text:?} is absolute: paths are relative to the target directory"
                    ));
                }
            }
        }
        if parts.is_empty() {
            return Err(format!(
                "path {text:?} names the target directory itself, not an entry in it"
            ));
        }
        Ok(RelPath { parts })
    }

    /// The directory this path is in, `None` at the top of the target.
    pub fn parent(&self) -> Option<RelPath> {
        (self.parts.len() > 1).then(|| RelPath {
            parts: self.parts[..self.parts.len() - 1].to_vec(),
        })
    }

    /// Every proper ancestor, nearest first: `a/b/c` gives `a/b`, then `a`.
    pub fn ancestors(&self) -> impl Iterator<Item = RelPath> + '_ {
        (1..self.parts.len()).rev().map(|len| RelPath {
            parts: self.parts[..len].to_vec(),
        })
    }

    /// Checks that a symlink at this path with this target stays inside
    /// the target directory, on the text alone, before anything exists.
    ///
    /// The target is resolved from the symlink's directory. `..` may only
    /// lead it: after a name, `..` would climb from wherever that name
    /// points, which may itself be a symlink (`s -> .` then `t -> s/..`
    /// is outside).
    pub fn check_link(&self, link: &Path) -> Result<(), String> {
        let shown = link.display();
        if link.as_os_str().is_empty() {
            return Err("symlink target is empty".into());
        }
        let mut up = 0;
        let mut named = false;
        for component in link.components() {
            match component {
                Component::Normal(_) => named = true,
                Component::CurDir => {}
                Component::ParentDir if named => {
                    return Err(format!(
                        "symlink target {shown:?} has `..` after a name: write it as leading `..` then names"
                    ));
                }
                Component::ParentDir => up += 1,
                Component::RootDir | Component::Prefix(_) => {
                    return Err(format!(
                        "symlink target {shown:?} is absolute: it must point inside the target directory"
                    ));
                }
            }
        }
        if up > self.parts.len() - 1 {
            return Err(format!(
                "symlink target {shown:?} points out of the target directory"
            ));
        }
        Ok(())
    }

    /// Its components, from the top of the target.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// The components of the directory it is in (none at the top).
    pub fn parent_parts(&self) -> &[String] {
        &self.parts[..self.parts.len() - 1]
    }

    /// Its last component: the name in its directory.
    pub fn name(&self) -> &str {
        &self.parts[self.parts.len() - 1]
    }

    /// Its first `len` components, as a path (`len` at least 1).
    pub fn prefix(&self, len: usize) -> RelPath {
        RelPath {
            parts: self.parts[..len.clamp(1, self.parts.len())].to_vec(),
        }
    }

    /// The error for a symlink found at its first `len` components: the
    /// jobs never follow one to reach an entry.
    pub fn symlink_on_the_way(&self, len: usize) -> anyhow::Error {
        anyhow::anyhow!(
            "{} is a symlink: not following it to reach {self}",
            self.prefix(len)
        )
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_must_stay_inside() {
        assert_eq!(
            RelPath::parse("./etc//motd/").unwrap().to_string(),
            "etc/motd"
        );
        for (bad, why) in [
            ("../etc", "`..`"),
            ("etc/../../x", "`..`"),
            ("/etc/motd", "absolute"),
            ("", "itself"),
            ("./.", "itself"),
        ] {
            let error = RelPath::parse(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn ancestors_come_nearest_first() {
        let path = RelPath::parse("a/b/c").unwrap();
        let names: Vec<String> = path.ancestors().map(|p| p.to_string()).collect();
        assert_eq!(names, ["a/b", "a"]);
        assert_eq!(path.parent().unwrap().to_string(), "a/b");
        assert_eq!(RelPath::parse("a").unwrap().parent(), None);
    }

    #[test]
    fn link_targets_are_resolved_from_the_link_directory() {
        let link = RelPath::parse("etc/app/current").unwrap();
        assert_eq!(link.check_link(Path::new("app.conf")), Ok(()));
        assert_eq!(link.check_link(Path::new("../../var/log")), Ok(()));
        assert_eq!(link.check_link(Path::new("..")), Ok(()));
        for (bad, why) in [
            ("../../../outside", "points out"),
            ("/etc/passwd", "absolute"),
            ("a/../b", "after a name"),
            ("", "empty"),
        ] {
            let error = link.check_link(Path::new(bad)).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
        let top = RelPath::parse("current").unwrap();
        assert!(top.check_link(Path::new("..")).is_err());
        assert_eq!(top.check_link(Path::new("./etc")), Ok(()));
    }
}
