//! What the runtime and the apply loop need to know about a command without running it: its
//! access (read or write), its keys (for routing to a group) and whether it may grow memory
//! (Redis's `denyoom` flag).

use super::command::{Access, Command};

impl Command {
    /// Whether the command may change the replicated state. `Exec` is a write when any of its
    /// commands is; `WatchedExec` always is (its guards are checked in log order).
    #[must_use]
    pub fn access(&self) -> Access {
        use Command as C;
        match self {
            C::Get { .. }
            | C::MGet { .. }
            | C::StrLen { .. }
            | C::GetRange { .. }
            | C::Exists { .. }
            | C::Type { .. }
            | C::Touch { .. }
            | C::Keys { .. }
            | C::Scan { .. }
            | C::RandomKey {}
            | C::DbSize {}
            | C::Ttl { .. }
            | C::HGet { .. }
            | C::HMGet { .. }
            | C::HGetAll { .. }
            | C::HExists { .. }
            | C::HLen { .. }
            | C::HKeys { .. }
            | C::HVals { .. }
            | C::HStrLen { .. }
            | C::LRange { .. }
            | C::LLen { .. }
            | C::LIndex { .. }
            | C::SMembers { .. }
            | C::SIsMember { .. }
            | C::SCard { .. }
            | C::SMIsMember { .. }
            | C::SRandMember { .. }
            | C::SetAlgebra { destination: None, .. }
            | C::ZScore { .. }
            | C::ZMScore { .. }
            | C::ZLexCount { .. }
            | C::ScanCollection { .. }
            | C::Object { .. }
            | C::MemoryUsage { .. }
            | C::ZRange { .. }
            | C::ZCard { .. }
            | C::ZRank { .. }
            | C::ZCount { .. }
            | C::KeyVersions { .. } => Access::Read,
            C::Exec { commands } => {
                if commands.iter().any(|command| command.access() == Access::Write) {
                    Access::Write
                } else {
                    Access::Read
                }
            }
            _ => Access::Write,
        }
    }

    /// The keys the command names, in argument order (duplicates kept), for routing. Empty
    /// for commands over the whole keyspace (`KEYS`, `SCAN`, `RANDOMKEY`, `DBSIZE`,
    /// `FLUSHALL`): the runtime sends those to every group and merges.
    #[must_use]
    pub fn keys(&self) -> Vec<&[u8]> {
        let mut keys = Vec::new();
        self.push_keys(&mut keys);
        keys
    }

    fn push_keys<'a>(&'a self, keys: &mut Vec<&'a [u8]>) {
        use Command as C;
        match self {
            C::MGet { keys: list }
            | C::Del { keys: list }
            | C::Exists { keys: list }
            | C::Touch { keys: list }
            | C::KeyVersions { keys: list } => keys.extend(list.iter().map(Vec::as_slice)),
            C::MSet { pairs } | C::MSetNx { pairs } => {
                keys.extend(pairs.iter().map(|(key, _)| key.as_slice()));
            }
            C::Rename { source, destination, .. }
            | C::Copy { source, destination, .. }
            | C::LMove { source, destination, .. }
            | C::SMove { source, destination, .. } => {
                keys.push(source);
                keys.push(destination);
            }
            C::SetAlgebra { destination, keys: sources, .. } => {
                keys.extend(destination.as_deref());
                keys.extend(sources.iter().map(Vec::as_slice));
            }
            C::Keys { .. } | C::Scan { .. } | C::RandomKey {} | C::DbSize {} | C::FlushAll {} => {}
            C::Exec { commands } => {
                for command in commands {
                    command.push_keys(keys);
                }
            }
            C::WatchedExec { guards, commands } => {
                keys.extend(guards.iter().map(|(key, _)| key.as_slice()));
                for command in commands {
                    command.push_keys(keys);
                }
            }
            _ => keys.push(self.single_key().expect("every other command names one key")),
        }
    }

    /// The key of a single-key command.
    fn single_key(&self) -> Option<&[u8]> {
        use Command as C;
        match self {
            C::Get { key }
            | C::Set { key, .. }
            | C::SetIfEq { key, .. }
            | C::SetNx { key, .. }
            | C::GetSet { key, .. }
            | C::GetDel { key }
            | C::GetEx { key, .. }
            | C::IncrBy { key, .. }
            | C::IncrByFloat { key, .. }
            | C::Append { key, .. }
            | C::StrLen { key }
            | C::GetRange { key, .. }
            | C::SetRange { key, .. }
            | C::Type { key }
            | C::Expire { key, .. }
            | C::Ttl { key, .. }
            | C::Persist { key }
            | C::Expired { key }
            | C::Evict { key } => Some(key),
            _ => self.collection_key(),
        }
    }

    fn collection_key(&self) -> Option<&[u8]> {
        use Command as C;
        match self {
            C::HSet { key, .. }
            | C::HGet { key, .. }
            | C::HMGet { key, .. }
            | C::HGetAll { key }
            | C::HDel { key, .. }
            | C::HExists { key, .. }
            | C::HLen { key }
            | C::HKeys { key }
            | C::HVals { key }
            | C::HIncrBy { key, .. }
            | C::HIncrByFloat { key, .. }
            | C::HSetNx { key, .. }
            | C::HStrLen { key, .. }
            | C::Push { key, .. }
            | C::Pop { key, .. }
            | C::LRange { key, .. }
            | C::LLen { key }
            | C::LIndex { key, .. }
            | C::LSet { key, .. }
            | C::LTrim { key, .. }
            | C::LRem { key, .. }
            | C::LInsert { key, .. }
            | C::SRandMember { key, .. }
            | C::SAdd { key, .. }
            | C::SRem { key, .. }
            | C::SMembers { key }
            | C::SIsMember { key, .. }
            | C::SCard { key }
            | C::SPop { key, .. }
            | C::SMIsMember { key, .. }
            | C::ZAdd { key, .. }
            | C::ZRem { key, .. }
            | C::ZScore { key, .. }
            | C::ZRange { key, .. }
            | C::ZCard { key }
            | C::ZPop { key, .. }
            | C::ZRank { key, .. }
            | C::ZCount { key, .. }
            | C::ZMScore { key, .. }
            | C::ZLexCount { key, .. }
            | C::ZRemRangeByScore { key, .. }
            | C::ZRemRangeByRank { key, .. }
            | C::ScanCollection { key, .. }
            | C::Object { key, .. }
            | C::MemoryUsage { key } => Some(key),
            _ => None,
        }
    }

    /// Whether running the command counts as an access of its keys (LRU/LFU). `OBJECT` and
    /// `MEMORY USAGE` inspect without touching, as in Redis.
    #[must_use]
    pub fn is_access(&self) -> bool {
        !matches!(self, Command::Object { .. } | Command::MemoryUsage { .. })
    }

    /// Whether the command may grow memory (Redis's `denyoom`): refused with the OOM error
    /// while used memory is over `maxmemory` (see `StateMachine::apply_batch`).
    #[must_use]
    pub fn may_grow_memory(&self) -> bool {
        use Command as C;
        match self {
            C::Set { .. }
            | C::SetIfEq { .. }
            | C::SetNx { .. }
            | C::MSet { .. }
            | C::MSetNx { .. }
            | C::GetSet { .. }
            | C::IncrBy { .. }
            | C::IncrByFloat { .. }
            | C::Append { .. }
            | C::SetRange { .. }
            | C::Copy { .. }
            | C::HSet { .. }
            | C::HIncrBy { .. }
            | C::HIncrByFloat { .. }
            | C::HSetNx { .. }
            | C::Push { .. }
            | C::LSet { .. }
            | C::LInsert { .. }
            | C::LMove { .. }
            | C::SAdd { .. }
            | C::SetAlgebra { destination: Some(_), .. }
            | C::ZAdd { .. } => true,
            C::Exec { commands } | C::WatchedExec { commands, .. } => {
                commands.iter().any(Command::may_grow_memory)
            }
            _ => false,
        }
    }
}
